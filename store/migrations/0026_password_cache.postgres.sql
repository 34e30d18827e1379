-- 0026: how long a verified password is remembered (edit Manager
-- passwordCacheSeconds=, show Manager): a login with the same password
-- within it skips bcrypt (backend/credcache.go); 0 remembers none. 300
-- by default.
--
-- PostgreSQL's form of 0024_password_cache.sqlite.sql (the same schema:
-- BIGINT where SQLite has INTEGER, whose PostgreSQL namesake is 32-bit).

ALTER TABLE manager_settings ADD COLUMN password_cache_seconds BIGINT NOT NULL DEFAULT 300
    CHECK (password_cache_seconds BETWEEN 0 AND 86400);
