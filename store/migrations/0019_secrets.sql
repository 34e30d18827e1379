-- 0018: the secrets every manager of one database shares, each sealed
-- (AES-256-GCM) with the secret key every manager is given
-- (--secret-key-file), never in clear: a copy of the database alone gives
-- none of them away. Rows by name:
--   key_check              a known text sealed by the first manager, which
--                          every later one must open with its own key
--   ssh_host_key           the SSH host key (OpenSSH's PEM), so that every
--                          manager presents the same
-- sealed is the sealed bytes (nonce, then ciphertext) in standard base64:
-- text, the same on every engine.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
