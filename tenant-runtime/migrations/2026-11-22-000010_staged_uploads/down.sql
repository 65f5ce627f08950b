DROP TABLE staged_uploads;
