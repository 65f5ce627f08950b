DROP TABLE returning_runtimes;
ALTER TABLE pools
    DROP COLUMN returning_ahead,
    DROP COLUMN returning_warm,
    DROP COLUMN returning_ttl_seconds;
