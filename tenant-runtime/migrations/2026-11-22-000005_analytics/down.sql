DROP TABLE analytics_referrers;
DROP TABLE analytics_daily;
DROP INDEX analytics_hits_project_day_idx;
DROP TABLE analytics_hits;
DROP TABLE analytics_salts;
