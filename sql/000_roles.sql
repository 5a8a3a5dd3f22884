-- Roles.  Run by a superuser (or a role with CREATEROLE) once per cluster.
--
--   tiktok_owner  NOLOGIN; owns the schema and runs the later migrations
--   tiktok_app    the module's login role: no BYPASSRLS, no ownership, so
--                 row-level security always applies to it
--
-- Idempotent: safe to apply again.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tiktok_owner') THEN
        CREATE ROLE tiktok_owner NOLOGIN;
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tiktok_app') THEN
        CREATE ROLE tiktok_app LOGIN;
    END IF;
END
$$;

-- whatever an earlier hand may have granted, the app role must never
-- bypass row-level security
ALTER ROLE tiktok_app NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
ALTER ROLE tiktok_owner NOLOGIN NOBYPASSRLS;

DO $$
BEGIN
    EXECUTE format('GRANT CREATE, CONNECT ON DATABASE %I TO tiktok_owner',
                   current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO tiktok_app',
                   current_database());
END
$$;
