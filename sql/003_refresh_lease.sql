-- A refresh lease on each account: exactly one token refresh per user at a
-- time, across workers and nginx nodes.  The lease is claimed with an
-- atomic UPDATE, held only around the refresh call, cleared by the UPDATE
-- that stores the new tokens, and expires by itself if its holder dies.
-- Idempotent.

SET ROLE tiktok_owner;

ALTER TABLE tiktok.accounts
    ADD COLUMN IF NOT EXISTS refresh_lock_until timestamptz,
    ADD COLUMN IF NOT EXISTS refresh_lock_owner text;

RESET ROLE;
