-- 0026: how long a verified password is remembered (edit Manager
-- passwordCacheSeconds=, show Manager): a login with the same password
-- within it skips bcrypt (backend/credcache.go); 0 remembers none. 300
-- by default.

ALTER TABLE manager_settings ADD COLUMN password_cache_seconds INTEGER NOT NULL DEFAULT 300
    CHECK (password_cache_seconds BETWEEN 0 AND 86400);
