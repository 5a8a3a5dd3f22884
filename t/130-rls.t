# Row-level security, proven with direct SQL as the module's role
# (tiktok_app): a transaction sees only the rows of the user named by
# app.user_id, and a missing setting sees nothing.

use strict;
use warnings;

use TikTokTest;
use Test::More;

my $psql = \&TikTokTest::psql;

$psql->(<<'SQL');
INSERT INTO tiktok.accounts (user_id, open_id, access_token_enc,
    refresh_token_enc, access_expires_at, refresh_expires_at, key_id)
VALUES ('user-a', 'open-a', '\x01', '\x01', now(), now(), '\x00'),
       ('user-b', 'open-b', '\x02', '\x02', now(), now(), '\x00');
INSERT INTO tiktok.posts (user_id, status, source, video_url)
VALUES ('user-a', 'queued', 'PULL_FROM_URL', 'https://media.example.com/a'),
       ('user-b', 'queued', 'PULL_FROM_URL', 'https://media.example.com/b');
INSERT INTO tiktok.oauth_states (state_hash, user_id, expires_at)
VALUES ('\xaa', 'user-a', now() + interval '10 minutes'),
       ('\xbb', 'user-b', now() + interval '10 minutes');
INSERT INTO tiktok.api_errors (user_id, endpoint) VALUES
    ('user-a', '/v2/user/info/'), ('user-b', '/v2/user/info/');
SQL

sub as_app {
    my ($sql) = @_;
    return scalar $psql->($sql, user => 'tiktok_app');
}

sub as_user_a {
    my ($sql) = @_;
    return as_app("BEGIN; SELECT set_config('app.user_id', 'user-a', true);"
                  . " $sql COMMIT;");
}

for my $table (qw(accounts posts oauth_states api_errors)) {
    is(as_user_a("SELECT string_agg(user_id, ',') FROM tiktok.$table;"),
       "user-a\nuser-a", "$table: user-a's setting sees only user-a's rows");

    is(as_app("SELECT count(*) FROM tiktok.$table"), '0',
       "$table: no setting sees nothing");

    is(as_app("BEGIN; SELECT set_config('app.user_id', '', true);"
              . " SELECT count(*) FROM tiktok.$table; COMMIT;"),
       "\n0", "$table: an empty setting sees nothing");
}

is(as_user_a("SELECT open_id FROM tiktok.accounts WHERE user_id = 'user-b';"),
   "user-a", "user-b's row asked for by key under user-a's setting: nothing");

# the setting is local to its transaction: the next one on the same session
# is back to seeing nothing
is(as_app("BEGIN; SELECT set_config('app.user_id', 'user-a', true); COMMIT;"
          . " SELECT count(*) FROM tiktok.accounts;"),
   "user-a\n0", "a SET LOCAL does not leak into the next transaction");

my ($out, $rc) = $psql->(
    "BEGIN; SELECT set_config('app.user_id', 'user-a', true);"
    . " INSERT INTO tiktok.posts (user_id, status, source)"
    . " VALUES ('user-b', 'queued', 'PULL_FROM_URL'); COMMIT;",
    user => 'tiktok_app', may_fail => 1);
isnt($rc, 0, 'writing a row for another user is refused');
like($out, qr/row-level security/, '... by the policy');

is(as_user_a("UPDATE tiktok.accounts SET display_name = 'x'"
             . " WHERE user_id = 'user-b';"),
   "user-a", "updating another user's row as user-a");
is($psql->("SELECT coalesce(display_name, '-') FROM tiktok.accounts"
           . " WHERE user_id = 'user-b'"), '-', "... leaves it unchanged");

is(as_user_a("DELETE FROM tiktok.posts;"), "user-a",
   "deleting all posts as user-a");
is($psql->("SELECT string_agg(user_id, ',') FROM tiktok.posts"), 'user-b',
   "... removed only user-a's");

is($psql->("SELECT rolbypassrls::text || ',' || rolsuper::text FROM pg_roles"
           . " WHERE rolname = 'tiktok_app'"), 'false,false',
   'tiktok_app can neither bypass RLS nor is superuser');
is($psql->("SELECT string_agg(DISTINCT pg_get_userbyid(relowner), ',')"
           . " FROM pg_class WHERE relnamespace = 'tiktok'::regnamespace"
           . " AND relkind = 'r'"), 'tiktok_owner',
   'every table is owned by tiktok_owner, not the app role');
is($psql->("SELECT count(*) FROM pg_class WHERE relnamespace ="
           . " 'tiktok'::regnamespace AND relkind = 'r'"
           . " AND NOT (relrowsecurity AND relforcerowsecurity)"), '0',
   'RLS is enabled and forced on every table');

# migrations are idempotent: applying them again changes nothing
TikTokTest::pg_migrate();
is($psql->("SELECT count(*) FROM tiktok.accounts"), '2',
   'applying sql/ again keeps the data');

done_testing();
