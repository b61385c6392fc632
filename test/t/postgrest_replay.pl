#!/usr/bin/perl
#
# postgrest_replay.pl: replay every function of catalog_api exactly as
# PostgREST v12 calls it, and check the HTTP status, the body and, for
# errors, the SQLSTATE and the JSON DETAIL.
#
# The reference for every statement below is /work/shared/POSTGREST.md
# (sections 1.1-1.6, 2, 4.1, 7.6 and 8).  For one request the harness sends,
# on a connection logged in as the NOINHERIT role "authenticator":
#
#   BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY|READ WRITE       (1.1)
#   select set_config('search_path', $1, true), ..., set_config('request.cookies', $7, true)  (1.2)
#   WITH pgrst_source AS (...) SELECT ... FROM (...) _postgrest_t    (1.4, v12 text)
#   COMMIT, or ABORT on error                                        (1.5)
#
# then maps the result with section 1.6 (response.status, response.headers)
# or the error with the section 2 table (plus 8.3: 28xxx -> 403) into an
# HTTP status and a {code, message, details, hint} body.  The whole request
# is re-run on 40001 (and 40P01, 8.9) as hasql-transaction does, bounded
# here; the test asserts that no request ever needed a retry.
#
# What the harness reads from the database, as PostgREST's schema cache
# does (section 3): argument names and types (format_type), defaults
# (pronargdefaults), volatility (access mode), return type, proconfig
# (isolation level, hoisted settings) and the rolconfig of the roles
# granted to the authenticator (4.1).  Overload resolution of section 3
# (required keys present, no unknown key, else 404 PGRST202) is done before
# any database work, like PostgREST.
#
# Request shapes (v12):
#   POST with arguments: form (a), $1 typed json, the raw body, json_to_record
#     with only the keys the client sent, in the function's parameter order.
#   GET with arguments: the query parameters become a JSON object of strings
#     (jsonRpcParams) and go through the same form (a).
#   No argument sent (GET or POST): form (d), no parameter at all.
#   Access mode: GET always READ ONLY; POST READ WRITE for VOLATILE functions,
#     READ ONLY for STABLE and IMMUTABLE ones.
#
# Audit (section 4.5): an editor's create_product and update_product are
# replayed with an x-request-id header and the bearer token in
# Authorization; their audit rows, read as superuser, must carry the JWT
# sub as actor, the JWT role, "POST /rpc/<fn>" and the header value, and
# no audit row may hold the token.  The audit API is then replayed: the
# STABLE readers (product_history, category_history, audit_by_actor,
# audit_by_request, audit_verify, audit_head, audit_masks) on GET, READ
# ONLY, and the VOLATILE ones (audit_seal, audit_maintain,
# audit_drop_partitions, audit_mask_set, audit_mask_drop) refused on GET
# (25006, 405) and run on POST; editors may call only the two history
# functions.  A mask declared by the test is dropped again, and
# audit_drop_partitions is called with a date before every partition, so
# the shared database keeps its policy and its audit history.
#
# Prepared versus unprepared (db-prepared-statements), both runs share the
# same scenario:
#   "prepared"   pg_server_prepare=1, pg_switch_prepared=1: every statement
#                with parameters is PQprepare'd once per connection under a
#                name (dbdpg_p<pid>_<n>) and then run with PQexecPrepared,
#                like hasql's per-connection statements "0", "1", ...
#                (db-prepared-statements=true, the default).
#   "unprepared" pg_server_prepare=1, pg_switch_prepared=0: every statement
#                with parameters goes through PQexecParams, i.e. the unnamed
#                extended-protocol statement (Parse/Bind/Execute of ""), which
#                is what hasql does with db-prepared-statements=false behind
#                PgBouncer in transaction pooling mode.
#   pg_server_prepare=0 was rejected: DBD::Pg then interpolates the values
#   into the SQL text on the client and sends a simple query, so the server
#   never sees unknown-typed parameters nor a json-typed $1.
#   In both runs values are bound without a type (DBD::Pg sends type 0,
#   "unknown", as PostgREST does), except $1 of the main query which is
#   bound as json (OID 114).  Statements without parameters (BEGIN, COMMIT,
#   ABORT, and the no-argument main query) are always sent by DBD::Pg as a
#   simple query (PQexec), whatever the attributes; PostgREST sends them as
#   extended-protocol statements.  For a single parameterless statement
#   inside an explicit transaction the two protocols behave the same.
#   Each run uses a pool of two authenticator connections and hands out
#   requests round robin, so no request can depend on session state left by
#   the previous one (transaction pooling).  The run checks afterwards, with
#   pg_prepared_statements, that it really used (or did not use) named
#   statements.
#
# Environment: PGHOST, PGPORT, PGDATABASE (with CREATE EXTENSION catalog
# CASCADE done), PGUSER a superuser.  The test creates the LOGIN NOINHERIT
# role "authenticator" when missing and grants it the three API roles; it
# connects as authenticator without a password (trust on the socket).
# Fixtures use a pid- and random-based suffix, so reruns do not collide.
#
# Note: prove picks up only *.t files when given a directory; run this file
# by name, or with `prove --ext .pl test/t/`.
#
use strict;
use warnings;

use Test::More;
use DBI;
use DBD::Pg qw(:pg_types);
use JSON::PP;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(encode_base64url);

# ---------------------------------------------------------------------------
# Configuration of the emulated PostgREST (db-schemas, db-anon-role, ...)
# ---------------------------------------------------------------------------
my $SCHEMA       = 'catalog_api';
my @EXTRA_PATH   = ('public');          # db-extra-search-path default
my $ANON_ROLE    = 'catalog_anon';      # db-anon-role
my $AUTHENTICATOR = 'authenticator';
my $MAX_ATTEMPTS = 5;                   # bound on the 40001 retry loop
# db-pre-request = "catalog_api.pre_request", as the README deploys it:
# every replayed request goes through the rate limiter and the CSRF check.
my $PRE_REQUEST  = qq{"$SCHEMA"."pre_request"};
my $JWT_SECRET   = 'replay-secret-' . $$ . '-0123456789abcdefghijklmnop';

# Every function of catalog_api and the replay cases that call it.  A new
# function in the schema without an entry here fails the first assertion.
my %COVERED = map { $_ => 1 } qw(
    archive_product create_category create_product get_product health
    list_categories product_facets purge_idempotency refresh_search_terms
    search_products update_category update_product
    product_history category_history audit_by_actor audit_by_request
    audit_seal audit_verify audit_head audit_maintain audit_drop_partitions
    audit_mask_set audit_mask_drop audit_masks
    pre_request csrf_token rate_limit_set rate_limit_drop rate_limits
);

my $json     = JSON::PP->new->canonical(1)->allow_nonref(1);
my $retries  = 0;                       # requests re-run on 40001/40P01
my @retried;                            # their labels
my %called;                             # mode -> function -> count
my @tokens;                             # every bearer token sent

# ---------------------------------------------------------------------------
# Connections
# ---------------------------------------------------------------------------
for my $v (qw(PGHOST PGPORT PGDATABASE PGUSER)) {
    diag("$v is not set; libpq defaults apply") unless defined $ENV{$v};
}

my $su = DBI->connect('dbi:Pg:', $ENV{PGUSER} // '', '',
                      { AutoCommit => 1, RaiseError => 1, PrintError => 0,
                        PrintWarn => 0 })
    or BAIL_OUT('cannot connect as the superuser: ' . DBI->errstr);
$su->do('SET client_min_messages TO warning');
BAIL_OUT('PGUSER must be a superuser')
    unless $su->selectrow_array('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
BAIL_OUT('extension catalog is not installed in this database')
    unless $su->selectrow_array(q{SELECT count(*) FROM pg_extension WHERE extname = 'catalog'});

$su->do(q{
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'authenticator') THEN
        CREATE ROLE authenticator LOGIN NOINHERIT;
    END IF;
END
$$});
for my $r (qw(catalog_anon catalog_editor catalog_admin)) {
    $su->do("GRANT $r TO $AUTHENTICATOR")
        unless $su->selectrow_array(q{SELECT pg_has_role('authenticator', $1, 'MEMBER')}, undef, $r);
}
{
    my ($login, $inherit) = $su->selectrow_array(
        q{SELECT rolcanlogin, rolinherit FROM pg_roles WHERE rolname = 'authenticator'});
    diag('role authenticator cannot log in') unless $login;
    diag('role authenticator has INHERIT; PostgREST documents NOINHERIT') if $inherit;
}

# One authenticator connection, configured as hasql does on a new pool
# connection (issue #990): client_encoding UTF8, client_min_messages WARNING.
sub connect_authenticator {
    my ($prepared) = @_;
    my $dbh = DBI->connect('dbi:Pg:', $AUTHENTICATOR, '',
                           { AutoCommit => 1, RaiseError => 0, PrintError => 0,
                             PrintWarn => 0,
                             pg_server_prepare => 1,
                             pg_switch_prepared => $prepared ? 1 : 0,
                             pg_placeholder_dollaronly => 1,
                             pg_placeholder_nocolons => 1 })
        or BAIL_OUT("cannot connect as $AUTHENTICATOR: " . DBI->errstr);
    $dbh->do(q{SET client_encoding = 'UTF8'}) or BAIL_OUT($dbh->errstr);
    $dbh->do('SET client_min_messages TO WARNING') or BAIL_OUT($dbh->errstr);
    BAIL_OUT('connected as ' . $dbh->selectrow_array('SELECT session_user'))
        unless $dbh->selectrow_array('SELECT session_user') eq $AUTHENTICATOR;
    return $dbh;
}

# ---------------------------------------------------------------------------
# Schema cache (section 3) and role settings (section 4.1)
# ---------------------------------------------------------------------------
my %FN;
{
    my $rows = $su->selectall_arrayref(q{
        SELECT p.proname, p.provolatile, p.proretset, p.pronargs, p.pronargdefaults,
               coalesce(p.proargnames, '{}') AS argnames,
               coalesce(p.proargmodes::text[], '{}') AS argmodes,
               array(SELECT pg_catalog.format_type(u.t, NULL)
                     FROM unnest(p.proargtypes) WITH ORDINALITY AS u(t, n) ORDER BY u.n) AS argtypes,
               p.provariadic <> 0 AS variadic,
               t.typtype AS rettyptype, t.typname AS rettypname,
               coalesce(p.proconfig, '{}') AS proconfig
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_type t ON t.oid = p.prorettype
        WHERE p.pronamespace = $1::regnamespace AND p.prokind = 'f'
          AND p.prorettype <> 'pg_catalog.trigger'::regtype
        ORDER BY p.proname}, { Slice => {} }, $SCHEMA);
    for my $r (@$rows) {
        my %config = map { split /=/, $_, 2 } @{ $r->{proconfig} };
        $FN{ $r->{proname} } = {
            volatility => $r->{provolatile},
            setof      => $r->{proretset},
            names      => [ @{ $r->{argnames} }[ 0 .. $r->{pronargs} - 1 ] ],
            types      => $r->{argtypes},
            required   => $r->{pronargs} - $r->{pronargdefaults},
            variadic   => $r->{variadic},
            composite  => ($r->{rettyptype} eq 'c' || $r->{rettypname} eq 'record'),
            config     => \%config,
        };
    }
}

# rolconfig of the roles granted to the authenticator, kept when the setting
# is user-settable or the authenticator may SET it (PG 15); values lower-cased
# on their way in (8.4).  default_transaction_isolation is used for BEGIN.
my %ROLE_SETTINGS;
{
    my $rows = $su->selectall_arrayref(q{
        SELECT r.rolname, split_part(s.setting, '=', 1) AS name,
               lower(substr(s.setting, strpos(s.setting, '=') + 1)) AS value
        FROM pg_catalog.pg_auth_members m
        JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
        CROSS JOIN LATERAL unnest(r.rolconfig) AS s(setting)
        JOIN pg_catalog.pg_settings ps ON ps.name = split_part(s.setting, '=', 1)
        WHERE m.member = 'authenticator'::regrole
          AND (ps.context = 'user'
               OR has_parameter_privilege('authenticator', ps.name, 'SET'))
        ORDER BY 1, 2}, { Slice => {} });
    push @{ $ROLE_SETTINGS{ $_->{rolname} } }, [ $_->{name}, $_->{value} ] for @$rows;
}

my @HOISTED = qw(statement_timeout plan_filter.statement_cost_limit default_transaction_isolation);

# ---------------------------------------------------------------------------
# SQL text, exactly as PostgREST v12 builds it
# ---------------------------------------------------------------------------
sub qi { my ($s) = @_; $s =~ s/"/""/g; return qq{"$s"} }

sub set_config_sql {
    my ($n_role_settings, $n_hoisted) = @_;
    my $n = 0;
    my @parts = ('set_config(\'search_path\', $' . ++$n . ', true)');
    for (1 .. $n_role_settings) {
        my $k = ++$n;
        my $v = ++$n;
        push @parts, "set_config(\$$k, \$$v, true)";
    }
    push @parts, "set_config('$_', \$" . ++$n . ', true)'
        for qw(role request.jwt.claims request.method request.path request.headers request.cookies);
    for (1 .. $n_hoisted) {
        my $k = ++$n;
        my $v = ++$n;
        push @parts, "set_config(\$$k, \$$v, true)";
    }
    return 'select ' . join(', ', @parts);
}

# The main query (section 1.4): @args are the argument names sent, in the
# function's parameter order; none gives form (d).
sub main_query_sql {
    my ($fname, $args) = @_;
    my $f = $FN{$fname};
    die "replay harness: $fname returns a composite; only scalar and SETOF scalar results are replayed\n"
        if $f->{composite};
    my $qfn = qi($SCHEMA) . '.' . qi($fname);
    my $source;
    if (@$args) {
        my %type;
        @type{ @{ $f->{names} } } = @{ $f->{types} };
        my $last = $f->{names}[-1];
        my $cols  = join(', ', map { qi($_) } @$args);
        my $typed = join(', ', map { qi($_) . ' ' . $type{$_} } @$args);
        my $named = join(', ', map {
            ($f->{variadic} && $_ eq $last ? 'VARIADIC ' : '') . qi($_) . ' := pgrst_body.' . qi($_)
        } @$args);
        $source = 'SELECT pgrst_call.pgrst_scalar FROM (SELECT $1 AS json_data) pgrst_payload, '
            . "LATERAL (SELECT $cols FROM json_to_record(pgrst_payload.json_data) AS _($typed) LIMIT 1) pgrst_body , "
            . "LATERAL (SELECT $qfn($named) pgrst_scalar) pgrst_call";
    }
    else {
        $source = "SELECT pgrst_call.pgrst_scalar FROM (SELECT $qfn() pgrst_scalar) pgrst_call";
    }
    my ($page_total, $body) = $f->{setof}
        ? ('pg_catalog.count(_postgrest_t)', q{coalesce(json_agg(_postgrest_t.pgrst_scalar), '[]')})
        : ('1', q{coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null')});
    my $alias = qi($fname);
    return "WITH pgrst_source AS ($source) SELECT null::bigint AS total_result_set, $page_total AS page_total, "
        . "$body AS body, "
        . q{nullif(current_setting('response.headers', true), '') AS response_headers, }
        . q{nullif(current_setting('response.status', true), '') AS response_status, }
        . q{'' AS response_inserted }
        . "FROM (SELECT $alias.* FROM \"pgrst_source\" AS $alias     ) _postgrest_t";
}

# ---------------------------------------------------------------------------
# SQLSTATE -> HTTP (section 2, v12; 8.3 adds 28xxx -> 403)
# ---------------------------------------------------------------------------
sub http_status {
    my ($code, $message, $authenticated) = @_;
    $message //= '';
    return 503 if $code =~ /^08/;
    return 500 if $code =~ /^09/;
    return 403 if $code =~ /^0[LP]/;
    return 403 if $code =~ /^28/;
    return 409 if $code eq '23503' || $code eq '23505';
    return 405 if $code eq '25006';
    return ($message =~ /requires a WHERE clause$/ ? 400 : 500) if $code eq '21000';
    # 22023 "role does not exist" is 401 in v13.0.1+ only; v12 answers 400.
    return 500 if $code =~ /^(?:25|2D|38|39|3B)/;
    return 500 if $code =~ /^40/;
    return 500 if $code eq '53400';
    return 503 if $code =~ /^53/;
    return 500 if $code =~ /^54/;
    return 500 if $code =~ /^(?:55|58|F0|HV|XX)/;
    return 503 if $code eq '57P01';
    return 500 if $code =~ /^57/;
    return 400 if $code eq 'P0001';
    return 500 if $code =~ /^P0/;
    return ($message =~ /^function xmlagg\(/ ? 406 : 404) if $code eq '42883';
    return 404 if $code eq '42P01';
    return 500 if $code eq '42P17';
    return ($authenticated ? 403 : 401) if $code eq '42501';
    if ($code =~ /^PT(.*)$/) {
        my $s = $1;
        return ($s =~ /^[0-9]{3}$/ ? 0 + $s : 500);
    }
    return 400;
}

# The HTTP response for an error raised by PostgreSQL.
sub error_response {
    my ($err, $authenticated) = @_;
    if ($err->{code} eq 'PGRST') {
        my ($m, $d) = eval { ($json->decode($err->{message}), $json->decode($err->{detail} // '')) };
        if (ref $m eq 'HASH' && ref $d eq 'HASH' && defined $m->{code} && defined $m->{message}
            && defined $d->{status}) {
            return { status => 0 + $d->{status}, headers => $d->{headers} // {},
                     body => { code => $m->{code}, message => $m->{message},
                               details => $m->{details}, hint => $m->{hint} } };
        }
        return { status => 500, headers => {},
                 body => { code => 'PGRST121', message => 'Could not parse JSON in the "RAISE SQLSTATE \'PGRST\'" error',
                           details => undef, hint => undef } };
    }
    my $status = http_status($err->{code}, $err->{message}, $authenticated);
    my %headers;
    $headers{'WWW-Authenticate'} = 'Bearer' if $status == 401;
    return { status => $status, headers => \%headers,
             body => { code => $err->{code}, message => $err->{message},
                       details => $err->{detail}, hint => $err->{hint} } };
}

# ---------------------------------------------------------------------------
# JWT (PostgREST verifies it before any database work; the harness only
# needs a realistic token for the Authorization header)
# ---------------------------------------------------------------------------
sub make_jwt {
    my ($claims) = @_;
    my $h = encode_base64url($json->encode({ alg => 'HS256', typ => 'JWT' }));
    my $p = encode_base64url($json->encode($claims));
    my $s = encode_base64url(hmac_sha256("$h.$p", $JWT_SECRET));
    my $token = "$h.$p.$s";
    push @tokens, $token;
    return $token;
}

# ---------------------------------------------------------------------------
# One HTTP request, replayed
# ---------------------------------------------------------------------------
my %POOL;        # mode -> { conns => [dbh, dbh], next => i }
my $MODE;        # current run: 'prepared' or 'unprepared'
my $request_no = 0;

sub next_conn {
    my $p = $POOL{$MODE};
    my $dbh = $p->{conns}[ $p->{next}++ % @{ $p->{conns} } ];
    return $dbh;
}

# rpc(method => GET|POST, fn => name, args => {..}, claims => {..} | undef,
#     headers => {..})
# headers are extra client request headers (names lower-cased, as PostgREST
# passes them), replacing the defaults of the same name (x-request-id).
# Returns { status, headers, body, attempts, request, access (READ ONLY or
# READ WRITE), request_headers (as sent in request.headers), token (the
# bearer token, if any) }, plus sqlstate and stage (begin, set_config, main,
# commit) for errors.
sub rpc {
    my (%r) = @_;
    my $method = $r{method};
    my $fname  = $r{fn};
    my $args   = $r{args} // {};
    my $f      = $FN{$fname};
    $request_no++;

    # Route and overload resolution (section 3), before any database work.
    unless ($f) {
        return { status => 404, headers => {}, attempts => 0,
                 body => { code => 'PGRST202', message => "Could not find the function $SCHEMA.$fname",
                           details => undef, hint => undef } };
    }
    my %param = map { $_ => 1 } @{ $f->{names} };
    my @required = @{ $f->{names} }[ 0 .. $f->{required} - 1 ];
    if (grep({ !$param{$_} } keys %$args) || grep({ !exists $args->{$_} } @required)) {
        return { status => 404, headers => {}, attempts => 0,
                 body => { code => 'PGRST202',
                           message => "Could not find the function $SCHEMA.$fname("
                               . join(', ', sort keys %$args) . ') in the schema cache',
                           details => undef, hint => undef } };
    }
    my @sent = grep { exists $args->{$_} } @{ $f->{names} };
    $called{$MODE}{$fname}++;

    # Body: POST sends the client's JSON as is; GET (v12) turns the query
    # string into an object of strings.
    # $body_json is $1 of form (a); with no key sent there is no $1 (form d).
    my $raw_body = $method eq 'POST' ? $json->encode($args) : undef;
    my $body_json;
    if (@sent) {
        if ($method eq 'GET') {
            my %strings = map { $_ => (defined $args->{$_} ? "$args->{$_}" : '') } @sent;
            $body_json = $json->encode(\%strings);
        }
        else {
            $body_json = $raw_body;
        }
    }

    # Identity.
    my ($claims_json, $role, $token);
    if ($r{claims}) {
        $token = make_jwt($r{claims});
        $role = $r{claims}{role} // $ANON_ROLE;
        $claims_json = $json->encode({ %{ $r{claims} }, role => $role });
    }
    else {
        $role = $ANON_ROLE;
        $claims_json = $json->encode({ role => $ANON_ROLE });
    }
    my $authenticated = $role ne $ANON_ROLE;

    # Headers: all of them but Cookie, names lower-cased.
    my $path = "/rpc/$fname";
    my %headers = (
        'host'         => 'api.catalog.test',
        'user-agent'   => 'postgrest-replay/1.0',
        'accept'       => 'application/json',
        'x-request-id' => "replay-$$-$request_no",
    );
    $headers{ lc $_ } = $r{headers}{$_} for keys %{ $r{headers} // {} };
    $headers{authorization} = "Bearer $token" if defined $token;
    if ($method eq 'POST') {
        $headers{'content-type'} = 'application/json';
        { use bytes; $headers{'content-length'} = '' . length($raw_body); }
    }

    # BEGIN (1.1): access mode from method and volatility; isolation level
    # from the function's proconfig, then the role's settings.
    my $access = ($method eq 'POST' && $f->{volatility} eq 'v') ? 'READ WRITE' : 'READ ONLY';
    my %role_settings = map { $_->[0] => $_->[1] } @{ $ROLE_SETTINGS{$role} // [] };
    my $iso = $f->{config}{default_transaction_isolation}
           // $role_settings{default_transaction_isolation} // 'read committed';
    $iso = uc $iso;
    $iso =~ s/^\s+|\s+$//g;
    $iso = 'READ COMMITTED' unless $iso =~ /^(?:READ COMMITTED|REPEATABLE READ|SERIALIZABLE)$/;
    my $begin = "BEGIN ISOLATION LEVEL $iso $access";

    # The set_config statement (1.2) and its values, all unknown-typed text.
    my @rs = grep { $_->[0] ne 'default_transaction_isolation' } @{ $ROLE_SETTINGS{$role} // [] };
    my @hoisted = map { [ $_, $f->{config}{$_} ] } grep { exists $f->{config}{$_} } @HOISTED;
    my $set_sql = set_config_sql(scalar @rs, scalar @hoisted);
    my @set_values = (join(', ', map { qi($_) } $SCHEMA, @EXTRA_PATH),
                      (map { @$_ } @rs),
                      $role, $claims_json, $method, $path, $json->encode(\%headers),
                      $json->encode($r{cookies} // {}),
                      (map { @$_ } @hoisted));

    my $main_sql = main_query_sql($fname, \@sent);

    my $dbh = next_conn();
    my ($row, $err, $attempts) = (undef, undef, 0);
    while (1) {
        $attempts++;
        ($row, $err) = (undef, undef);
        my $stage = 'begin';
        my $fail = sub {
            $err = { code => $dbh->state, message => $dbh->pg_error_field('primary') // $dbh->errstr,
                     detail => $dbh->pg_error_field('detail'), hint => $dbh->pg_error_field('hint'),
                     stage => $stage };
        };
        my $sth = $dbh->prepare_cached($begin);
        if (!$sth || !$sth->execute) {
            $fail->();
            last;                         # a failed BEGIN is neither aborted nor retried (8.7)
        }
        $stage = 'set_config';
        $sth = $dbh->prepare_cached($set_sql);
        my $pre_ok = 0;
        if ($sth && $sth->execute(@set_values)) {
            $sth->finish;
            # 1.3: the pre-request, in the same transaction
            $stage = 'pre_request';
            my $p = $dbh->prepare_cached("select $PRE_REQUEST()");
            if ($p && $p->execute) {
                $p->fetchall_arrayref;
                $called{$MODE}{pre_request}++;
                $pre_ok = 1;
            }
            else {
                $fail->();
            }
        }
        else {
            $fail->();
        }
        if ($pre_ok) {
            $stage = 'main';
            $sth = $dbh->prepare_cached($main_sql);
            my $ok = $sth;
            if ($ok && @sent) {
                $ok = $sth->bind_param(1, $body_json, { pg_type => PG_JSON });
            }
            if ($ok && $sth->execute) {
                $row = $sth->fetchrow_hashref;
                $sth->finish;
                $stage = 'commit';
                my $c = $dbh->prepare_cached('COMMIT');
                $fail->() unless $c && $c->execute;
            }
            else {
                $fail->();
            }
        }
        if ($err && $err->{stage} ne 'commit') {
            my $a = $dbh->prepare_cached('ABORT');
            $a->execute if $a;
        }
        if ($err && ($err->{code} eq '40001' || $err->{code} eq '40P01') && $attempts < $MAX_ATTEMPTS) {
            next;
        }
        last;
    }
    if ($attempts > 1) {
        $retries++;
        push @retried, "$MODE $method $path (attempts $attempts)";
    }

    my $res;
    if ($err) {
        $res = error_response($err, $authenticated);
        $res->{sqlstate} = $err->{code};
        $res->{stage} = $err->{stage};
    }
    else {
        $res = { status => 200, headers => {} };
        my $body = $row->{body};
        $res->{raw} = $body;
        $res->{body} = defined $body ? $json->decode($body) : undef;
        # 1.6: response.headers must be an array of single-key objects,
        # response.status is read by its leading digits.
        if (defined $row->{response_headers}) {
            my $h = eval { $json->decode($row->{response_headers}) };
            if (ref $h eq 'ARRAY' && !grep { ref $_ ne 'HASH' || keys %$_ != 1 } @$h) {
                %{ $res->{headers} } = (%{ $res->{headers} }, %$_) for @$h;
            }
            else {
                $res = { status => 500, headers => {},
                         body => { code => 'PGRST111', message => 'response.headers guc must be a JSON array composed of objects with a single key and a string value',
                                   details => undef, hint => undef } };
            }
        }
        if (defined $row->{response_status} && $res->{status} != 500) {
            if ($row->{response_status} =~ /^\s*([0-9]+)/) {
                $res->{status} = 0 + $1;
            }
            else {
                $res = { status => 500, headers => {},
                         body => { code => 'PGRST112', message => 'response.status guc must be a valid status code',
                                   details => undef, hint => undef } };
            }
        }
    }
    $res->{attempts} = $attempts;
    $res->{access} = $access;
    $res->{request_headers} = \%headers;
    $res->{token} = $token;
    $res->{request} = "$method $path" . ($method eq 'GET' && defined $body_json ? " (query $body_json)"
                                         : defined $raw_body ? " $raw_body" : '') . " as $role";
    return $res;
}

# ---------------------------------------------------------------------------
# Assertion helpers
# ---------------------------------------------------------------------------
sub show { my ($res) = @_; return "$res->{request} -> $res->{status} " . $json->encode($res->{body}) }

# Success: HTTP status (200 unless given) and a body; returns the body.
sub expect_ok {
    my ($res, $label, $status) = @_;
    $status //= 200;
    is($res->{status}, $status, "$label: HTTP $status")
        or diag(show($res));
    return $res->{body};
}

# Error: HTTP status, SQLSTATE (= body code), body keys, and the JSON DETAIL
# fields given in %$detail (compared with is()).
sub expect_error {
    my ($res, $label, $status, $code, $detail) = @_;
    is($res->{status}, $status, "$label: HTTP $status") or diag(show($res));
    is($res->{sqlstate}, $code, "$label: SQLSTATE $code");
    my $b = $res->{body} // {};
    is_deeply([ sort keys %$b ], [qw(code details hint message)], "$label: error body has code, details, hint, message");
    is($b->{code}, $code, "$label: body code $code");
    ok(defined $b->{message} && length $b->{message}, "$label: body message is set");
    return unless $detail;
    my $d = eval { $json->decode($b->{details} // '') };
    ok(ref $d eq 'HASH', "$label: details is a JSON object") or diag('details: ' . ($b->{details} // 'null'));
    $d = {} unless ref $d eq 'HASH';
    is($d->{$_}, $detail->{$_}, "$label: details.$_ = $detail->{$_}") for sort keys %$detail;
    # the correlation id of the request (DESIGN.md: it appears in error
    # details), sanitized as the extension does (ApiSanitizeRequestId)
    my $rid = $res->{request_headers}{'x-request-id'};
    if (defined $rid) {
        utf8::encode($rid) if utf8::is_utf8($rid);
        $rid = substr($rid, 0, 128);
        # nothing usable left: no id from the header
        $rid = undef unless $rid =~ m{[A-Za-z0-9._:\@/+=-]};
        $rid =~ s{[^A-Za-z0-9._:\@/+=-]}{_}g if defined $rid;
    }
    is($d->{request_id}, $rid, "$label: details.request_id is the request's x-request-id");
    return $d;
}

my @PRODUCT_KEYS  = sort qw(id sku name description status price currency category attributes version created_at updated_at);
my @CATEGORY_KEYS = qw(id name parent_id slug version);

sub check_product_doc {
    my ($p, $label) = @_;
    if (ref $p ne 'HASH') {
        fail("$label: product document is an object");
        return;
    }
    is_deeply([ sort keys %$p ], \@PRODUCT_KEYS, "$label: product document keys");
    is_deeply([ sort keys %{ $p->{category} // {} } ], [qw(id name)], "$label: category has id and name");
}

sub su_row {
    my ($sql, @bind) = @_;
    return $su->selectrow_hashref($sql, undef, @bind);
}

sub su_rows {
    my ($sql, @bind) = @_;
    return $su->selectall_arrayref($sql, { Slice => {} }, @bind);
}

# Fixtures are made over the superuser connection with the API itself,
# with catalog.actor set for the transaction.
sub fixture {
    my ($sql, @bind) = @_;
    $su->begin_work;
    $su->do(q{SELECT set_config('catalog.actor', 'replay-fixture', true)});
    my ($v) = $su->selectrow_array($sql, undef, @bind);
    $su->commit;
    return $json->decode($v);
}

# ---------------------------------------------------------------------------
# 0. The functions of catalog_api are exactly the ones this test replays
# ---------------------------------------------------------------------------
is_deeply([ sort keys %FN ], [ sort keys %COVERED ],
          'functions of catalog_api (pg_proc) are exactly the functions this test replays')
    or diag('in pg_proc: ' . join(', ', sort keys %FN) . '; covered: ' . join(', ', sort keys %COVERED));

# ---------------------------------------------------------------------------
# The scenario, run once per mode
# ---------------------------------------------------------------------------
sub scenario {
    my ($mode) = @_;
    my $tag  = sprintf('%d-%s-%04x', $$, substr($mode, 0, 1), int rand 65536);
    my $SKU  = uc "RP-$tag";
    my $slug = lc "rp-$tag";
    my $now  = time;
    my $editor_sub = "replay-editor-$tag";
    my $admin_sub  = "replay-admin-$tag";
    my $editor = { role => 'catalog_editor', sub => $editor_sub, iat => $now, exp => $now + 3600 };
    my $admin  = { role => 'catalog_admin',  sub => $admin_sub,  iat => $now, exp => $now + 3600 };
    my $anon_with_token = { role => 'catalog_anon', iat => $now, exp => $now + 3600 };

    # Fixtures: a root category, a published and a draft product.
    my $root = fixture(q{SELECT catalog_api.create_category(name => $1, slug => $2)},
                       "Replay root $tag", "$slug-root");
    my $pub = fixture(q{SELECT catalog_api.create_product(sku => $1, name => $2, price => 12.5,
                            category_id => $3, status => 'published', description => 'Published fixture')},
                      "$SKU-PUB", "Replay published $tag", $root->{id});
    my $draft = fixture(q{SELECT catalog_api.create_product(sku => $1, name => $2, price => 3,
                              category_id => $3)},
                        "$SKU-DRAFT", "Replay draft $tag", $root->{id});

    subtest "$mode: health" => sub {
        my $b = expect_ok(rpc(method => 'GET', fn => 'health'), 'GET /rpc/health as anon');
        is(ref $b, 'HASH', 'health body is an object');
        is($b->{status}, 'ok', 'health status ok');
        ok(JSON::PP::is_bool($b->{shared_memory}) && $b->{shared_memory}, 'shared_memory is JSON true');
        ok(JSON::PP::is_bool($b->{in_recovery}) && !$b->{in_recovery}, 'in_recovery is JSON false');
        ok(defined $b->{version}, 'health reports the extension version');
        my $res = rpc(method => 'POST', fn => 'health', args => {});
        expect_ok($res, 'POST /rpc/health {} as anon (STABLE: READ ONLY)');
        is($res->{body}{status}, 'ok', 'POST health status ok');
    };

    subtest "$mode: list_categories" => sub {
        my $b = expect_ok(rpc(method => 'GET', fn => 'list_categories'), 'GET /rpc/list_categories as anon');
        is(ref $b, 'ARRAY', 'list_categories body is an array');
        my ($mine) = grep { ref $_ eq 'HASH' && ($_->{slug} // '') eq "$slug-root" } @{ ref $b eq 'ARRAY' ? $b : [] };
        ok($mine, 'the fixture root category is listed');
        if ($mine) {
            ok(!grep({ !exists $mine->{$_} } @CATEGORY_KEYS), 'category entry has id, name, parent_id, slug, version')
                or diag($json->encode($mine));
            is($mine->{id}, $root->{id}, 'listed id');
            ok(!defined $mine->{parent_id}, 'root has parent_id null');
        }
        my $res = rpc(method => 'POST', fn => 'list_categories', args => {}, claims => $editor);
        expect_ok($res, 'POST /rpc/list_categories {} as editor (STABLE: READ ONLY)');
        is(ref $res->{body}, 'ARRAY', 'POST body is an array');
    };

    subtest "$mode: get_product" => sub {
        my $res = rpc(method => 'GET', fn => 'get_product', args => { id => $pub->{id} });
        my $p = expect_ok($res, 'GET /rpc/get_product?id=<published> as anon');
        check_product_doc($p, 'published product');
        is($p->{id}, $pub->{id}, 'id');
        is($p->{sku}, "$SKU-PUB", 'sku');
        is($p->{status}, 'published', 'status');
        cmp_ok($p->{price}, '==', 12.5, 'price');
        is($p->{currency}, 'USD', 'currency default');
        is($p->{category}{id}, $root->{id}, 'category.id');
        is($p->{category}{name}, "Replay root $tag", 'category.name');
        is($p->{version}, 1, 'version');

        expect_error(rpc(method => 'GET', fn => 'get_product', args => { id => $draft->{id} }),
                     'GET /rpc/get_product?id=<draft> as anon', 404, 'PT404', { reason => 'not_found' });
        expect_error(rpc(method => 'GET', fn => 'get_product', args => { id => $draft->{id} }, claims => $anon_with_token),
                     'GET /rpc/get_product?id=<draft> as anon with a token', 404, 'PT404');
        my $d = expect_ok(rpc(method => 'GET', fn => 'get_product', args => { id => $draft->{id} }, claims => $editor),
                          'GET /rpc/get_product?id=<draft> as editor');
        is(ref $d eq 'HASH' ? $d->{status} : undef, 'draft', 'editor sees the draft');
        $p = expect_ok(rpc(method => 'POST', fn => 'get_product', args => { id => 0 + $pub->{id} }),
                       'POST /rpc/get_product as anon (STABLE: READ ONLY)');
        is(ref $p eq 'HASH' ? $p->{id} : undef, $pub->{id}, 'POST returns the same product');
        expect_error(rpc(method => 'GET', fn => 'get_product', args => { id => 'abc' }),
                     'GET /rpc/get_product?id=abc (json_to_record cannot cast)', 400, '22P02');
        my $r = rpc(method => 'GET', fn => 'get_product', args => {});
        is($r->{status}, 404, 'GET /rpc/get_product without id: 404');
        is($r->{body}{code}, 'PGRST202', 'without id: PGRST202 (no database work)');
    };

    my $created;
    subtest "$mode: create_product" => sub {
        my %body = (sku => lc("$SKU-NEW"), name => "  Replay   product $tag ", price => 9.9,
                    category_id => 0 + $root->{id}, description => 'Made by the replay.',
                    status => 'published', currency => 'eur', attributes => { colour => 'red', size => [40, 41] });
        my $res = rpc(method => 'POST', fn => 'create_product', args => \%body, claims => $editor);
        $created = expect_ok($res, 'POST /rpc/create_product as editor');
        check_product_doc($created, 'created product');
        $created = {} unless ref $created eq 'HASH';
        is($created->{sku}, "$SKU-NEW", 'sku canonicalised to upper case');
        is($created->{name}, "Replay product $tag", 'name trimmed and white space collapsed');
        is($created->{currency}, 'EUR', 'currency upper-cased');
        cmp_ok($created->{price} // -1, '==', 9.9, 'price');
        is($created->{version}, 1, 'version 1');
        is_deeply($created->{attributes}, { colour => 'red', size => [40, 41] }, 'attributes');
        my $row = su_row(q{SELECT created_by, updated_by FROM catalog.product WHERE id = $1}, $created->{id});
        is($row->{created_by}, $editor_sub, 'created_by is the JWT sub (superuser check)');
        is($row->{updated_by}, $editor_sub, 'updated_by is the JWT sub');

        expect_error(rpc(method => 'POST', fn => 'create_product', claims => $editor,
                         args => { sku => lc("$SKU-NEW"), name => 'Other', price => 1, category_id => 0 + $root->{id} }),
                     'POST create_product duplicate sku', 409, '23505', { field => 'sku', reason => 'duplicate' });
        expect_error(rpc(method => 'POST', fn => 'create_product', claims => $editor,
                         args => { sku => "$SKU-MARKUP", name => '<script>alert(1)</script>', price => 1,
                                   category_id => 0 + $root->{id} }),
                     'POST create_product markup in name', 400, '22023', { field => 'name', reason => 'markup' });
        is(su_row(q{SELECT count(*) AS n FROM catalog.product WHERE sku = $1}, "$SKU-MARKUP")->{n}, 0,
           'nothing stored for the refused name');

        # Idempotency: same key and payload -> first result; other payload -> PT422.
        my %idem = (sku => "$SKU-IDEM", name => 'Idempotent', price => 4, category_id => 0 + $root->{id},
                    idempotency_key => "rp-key-$tag");
        my $first = expect_ok(rpc(method => 'POST', fn => 'create_product', args => \%idem, claims => $editor),
                              'POST create_product with idempotency key');
        my $again = rpc(method => 'POST', fn => 'create_product', args => \%idem, claims => $editor);
        my $second = expect_ok($again, 'POST create_product same key, same payload');
        is_deeply($second, $first, 'the replay returns the first response');
        is(su_row(q{SELECT count(*) AS n FROM catalog.product WHERE sku = $1}, "$SKU-IDEM")->{n}, 1,
           'one product for two requests with the same key');
        expect_error(rpc(method => 'POST', fn => 'create_product', claims => $editor,
                         args => { %idem, price => 5 }),
                     'POST create_product same key, other payload', 422, 'PT422',
                     { field => 'idempotency_key', reason => 'payload_mismatch' });

        expect_error(rpc(method => 'POST', fn => 'create_product',
                         args => { sku => "$SKU-ANON", name => 'Anon', price => 1, category_id => 0 + $root->{id} }),
                     'POST create_product as anon', 401, '42501');
        my $r401 = rpc(method => 'POST', fn => 'create_product',
                       args => { sku => "$SKU-ANON", name => 'Anon', price => 1, category_id => 0 + $root->{id} });
        is($r401->{headers}{'WWW-Authenticate'}, 'Bearer', '401 carries WWW-Authenticate: Bearer');

        # GET on a VOLATILE function runs READ ONLY: the write fails with 25006.
        my $get = rpc(method => 'GET', fn => 'create_product', claims => $editor,
                      args => { sku => "$SKU-GET", name => 'Via GET', price => '1.50', category_id => $root->{id} });
        expect_error($get, 'GET /rpc/create_product as editor (READ ONLY transaction)', 405, '25006');
        is($get->{stage}, 'main', 'the 25006 comes from the main query (the function tried to write)');
        like($get->{body}{message} // '', qr/read-only transaction/, 'message names the read-only transaction');
        is(su_row(q{SELECT count(*) AS n FROM catalog.product WHERE sku = $1}, "$SKU-GET")->{n}, 0,
           'nothing stored by the GET');
    };

    subtest "$mode: update_product" => sub {
        my $id = 0 + ($created->{id} // 0);
        expect_error(rpc(method => 'POST', fn => 'update_product', claims => $editor,
                         args => { id => $id, expected_version => 7, name => 'Stale' }),
                     'POST update_product stale version', 409, 'PT409',
                     { reason => 'stale_version', expected_version => 7, current_version => 1 });
        my $p = expect_ok(rpc(method => 'POST', fn => 'update_product', claims => $editor,
                              args => { id => $id, expected_version => 1, name => "Renamed $tag", price => 11 }),
                          'POST update_product as editor');
        check_product_doc($p, 'updated product');
        $p = {} unless ref $p eq 'HASH';
        is($p->{name}, "Renamed $tag", 'name changed');
        cmp_ok($p->{price} // -1, '==', 11, 'price changed');
        is($p->{sku}, "$SKU-NEW", 'sku unchanged');
        is($p->{version}, 2, 'version 2');
        is(su_row(q{SELECT updated_by FROM catalog.product WHERE id = $1}, $id)->{updated_by}, $editor_sub,
           'updated_by is the JWT sub');
        expect_error(rpc(method => 'POST', fn => 'update_product', args => { id => $id, expected_version => 2, name => 'Anon' }),
                     'POST update_product as anon', 401, '42501');
        expect_error(rpc(method => 'POST', fn => 'update_product', claims => $editor,
                         args => { id => $id, expected_version => 2, name => '<b>bold</b>' }),
                     'POST update_product markup in name', 400, '22023', { field => 'name', reason => 'markup' });
    };

    subtest "$mode: archive_product" => sub {
        my $id = 0 + ($created->{id} // 0);
        expect_error(rpc(method => 'POST', fn => 'archive_product', claims => $editor,
                         args => { id => $id, expected_version => 1 }),
                     'POST archive_product stale version', 409, 'PT409', { reason => 'stale_version' });
        my $p = expect_ok(rpc(method => 'POST', fn => 'archive_product', claims => $editor,
                              args => { id => $id, expected_version => 2 }),
                          'POST archive_product as editor');
        check_product_doc($p, 'archived product');
        is(ref $p eq 'HASH' ? $p->{status} : undef, 'archived', 'status archived');
        is(ref $p eq 'HASH' ? $p->{version} : undef, 3, 'version 3');
        expect_error(rpc(method => 'GET', fn => 'get_product', args => { id => $id }),
                     'GET get_product of the archived product as anon', 404, 'PT404');
        expect_error(rpc(method => 'POST', fn => 'archive_product', claims => $editor,
                         args => { id => -1, expected_version => 1 }),
                     'POST archive_product of a missing id', 404, 'PT404', { reason => 'not_found' });
    };

    subtest "$mode: create_category and update_category" => sub {
        my $c = expect_ok(rpc(method => 'POST', fn => 'create_category', claims => $editor,
                              args => { name => "Child $tag", slug => uc("$slug-child"), parent_id => 0 + $root->{id} }),
                          'POST create_category as editor');
        is(ref $c, 'HASH', 'category document is an object');
        $c = {} unless ref $c eq 'HASH';
        is_deeply([ sort keys %$c ], [ sort @CATEGORY_KEYS ], 'category document keys');
        is($c->{slug}, "$slug-child", 'slug lower-cased');
        is($c->{parent_id}, $root->{id}, 'parent_id');
        is($c->{version}, 1, 'version 1');
        is(su_row(q{SELECT created_by FROM catalog.category WHERE id = $1}, $c->{id})->{created_by}, $editor_sub,
           'category created_by is the JWT sub');

        expect_error(rpc(method => 'POST', fn => 'create_category', claims => $editor,
                         args => { name => 'Dup', slug => "$slug-child" }),
                     'POST create_category duplicate slug', 409, '23505', { field => 'slug', reason => 'duplicate' });
        expect_error(rpc(method => 'POST', fn => 'create_category', args => { name => 'Anon', slug => "$slug-anon" }),
                     'POST create_category as anon', 401, '42501');

        expect_error(rpc(method => 'POST', fn => 'update_category', claims => $editor,
                         args => { id => 0 + $root->{id}, expected_version => 1, parent_id => 0 + $c->{id} }),
                     'POST update_category moving the root under its child', 400, '22023',
                     { field => 'parent_id', reason => 'cycle' });
        expect_error(rpc(method => 'POST', fn => 'update_category', claims => $editor,
                         args => { id => 0 + $c->{id}, expected_version => 5, name => 'Stale' }),
                     'POST update_category stale version', 409, 'PT409', { reason => 'stale_version' });
        my $u = expect_ok(rpc(method => 'POST', fn => 'update_category', claims => $editor,
                              args => { id => 0 + $c->{id}, expected_version => 1, name => "Child renamed $tag" }),
                          'POST update_category rename as editor');
        is(ref $u eq 'HASH' ? $u->{name} : undef, "Child renamed $tag", 'name changed');
        is(ref $u eq 'HASH' ? $u->{version} : undef, 2, 'version 2');
        $u = expect_ok(rpc(method => 'POST', fn => 'update_category', claims => $editor,
                           args => { id => 0 + $c->{id}, expected_version => 2, to_root => JSON::PP::true }),
                       'POST update_category to_root as editor');
        ok(ref $u eq 'HASH' && !defined $u->{parent_id}, 'moved to the root');

        # GET list shows the renamed category.
        my $l = expect_ok(rpc(method => 'GET', fn => 'list_categories'), 'GET list_categories after the changes');
        my ($mine) = grep { ref $_ eq 'HASH' && ($_->{id} // 0) == $c->{id} } @{ ref $l eq 'ARRAY' ? $l : [] };
        is($mine ? $mine->{name} : undef, "Child renamed $tag", 'list shows the new name');
    };

    subtest "$mode: search_products" => sub {
        # GET: every argument arrives as a string (v12), the transaction is
        # READ ONLY, the role catalog_anon.
        my $b = expect_ok(rpc(method => 'GET', fn => 'search_products',
                              args => { q => "Replay", category_id => $root->{id}, page_size => 1 }),
                          'GET /rpc/search_products?q=Replay&category_id=..&page_size=1 as anon');
        my @items = ref $b eq 'HASH' && ref $b->{items} eq 'ARRAY' ? @{ $b->{items} } : ();
        is(scalar @items, 1, 'one item on the page');
        is($items[0]{id}, $pub->{id}, 'anon finds the published product, never the draft') if @items;
        ok(!defined $b->{next_cursor}, 'no next page: the draft is invisible to anon') if ref $b eq 'HASH';
        $b = expect_ok(rpc(method => 'GET', fn => 'search_products', claims => $editor,
                           args => { q => "Replay", category_id => $root->{id}, status => 'draft' }),
                       'GET search_products?status=draft as editor');
        is(ref $b eq 'HASH' ? $b->{items}[0]{id} : undef, $draft->{id}, 'the editor finds the draft');
        expect_error(rpc(method => 'GET', fn => 'search_products', args => { status => 'draft' }),
                     'GET search_products?status=draft as anon', 401, '42501');
        expect_error(rpc(method => 'GET', fn => 'search_products', args => { sort => 'cheapest' }),
                     'GET search_products?sort=cheapest', 400, '22023', { field => 'sort' });
        expect_error(rpc(method => 'GET', fn => 'search_products', args => { cursor => 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }),
                     'GET search_products with a forged cursor', 400, '22023', { field => 'cursor' });
    };

    subtest "$mode: product_facets" => sub {
        my $b = expect_ok(rpc(method => 'GET', fn => 'product_facets', args => { category_id => $root->{id} }),
                          'GET /rpc/product_facets?category_id=.. as anon');
        is(ref $b eq 'HASH' ? $b->{total} : undef, 1, 'anon counts the published product only');
        $b = expect_ok(rpc(method => 'POST', fn => 'product_facets', args => { category_id => 0 + $root->{id} }, claims => $editor),
                       'POST /rpc/product_facets as editor (STABLE: READ ONLY)');
        my %st = map { $_->{status} => $_->{count} } @{ ref $b eq 'HASH' ? $b->{status} : [] };
        my $want = $json->decode(su_row(q{SELECT COALESCE(json_object_agg(status, n), '{}')::text AS j FROM
                                            (SELECT status::text, count(*) AS n FROM catalog.product
                                             WHERE category_id = $1 GROUP BY status) s}, $root->{id})->{j});
        is_deeply(\%st, $want, 'the editor sees every status, counted as a GROUP BY counts them');
        ok(keys %$want > 1, 'the fixtures hold more than one status');
    };

    subtest "$mode: refresh_search_terms" => sub {
        expect_error(rpc(method => 'POST', fn => 'refresh_search_terms', args => {}, claims => $editor),
                     'POST refresh_search_terms as editor', 403, '42501');
        my $n = expect_ok(rpc(method => 'POST', fn => 'refresh_search_terms', args => {}, claims => $admin),
                          'POST refresh_search_terms as admin');
        is($n, su_row(q{SELECT count(*) AS n FROM catalog.search_term})->{n},
           'refresh_search_terms returns the number of entries the dictionary now holds');
        ok(su_row(q{SELECT count(*) AS n FROM catalog.search_term WHERE term = 'replay'})->{n} >= 1,
           'the dictionary holds the words of the fixtures ("replay")');
    };

    subtest "$mode: purge_idempotency" => sub {
        expect_error(rpc(method => 'POST', fn => 'purge_idempotency', args => { batch_size => 10 }, claims => $editor),
                     'POST purge_idempotency as editor', 403, '42501');
        expect_error(rpc(method => 'POST', fn => 'purge_idempotency', args => {}),
                     'POST purge_idempotency as anon', 401, '42501');
        my $n = expect_ok(rpc(method => 'POST', fn => 'purge_idempotency', args => { batch_size => 10 }, claims => $admin),
                          'POST purge_idempotency {"batch_size":10} as admin');
        ok(defined $n && !ref $n && $n =~ /^[0-9]+$/, 'body is a non-negative integer') or diag($json->encode($n));
        $n = expect_ok(rpc(method => 'POST', fn => 'purge_idempotency', args => {}, claims => $admin),
                       'POST purge_idempotency {} as admin (no argument: default batch)');
        ok(defined $n && !ref $n && $n =~ /^[0-9]+$/, 'body is a non-negative integer');
        expect_error(rpc(method => 'POST', fn => 'purge_idempotency', args => { batch_size => 0 }, claims => $admin),
                     'POST purge_idempotency batch_size 0 as admin', 400, '22023',
                     { field => 'batch_size', reason => 'out_of_range', min => 1, max => 100000 });
    };

    # -----------------------------------------------------------------------
    # Audit: the trail of writes made through the envelope, then every
    # function of the audit API (editors read a row's history; the rest is
    # for admins).
    # -----------------------------------------------------------------------
    (my $key_tag = lc $tag) =~ s/-/_/g;
    my %rid = (create => "rp-$tag-create", update => "rp-$tag-update");
    my $audited = {};            # the product created and updated below
    my @audit_ids;               # its audit ids, oldest first (superuser read)

    subtest "$mode: audit trail of create_product and update_product" => sub {
        my $res = rpc(method => 'POST', fn => 'create_product', claims => $editor,
                      headers => { 'X-Request-Id' => $rid{create} },
                      args => { sku => "$SKU-AUD", name => "Audited $tag", price => 20,
                                category_id => 0 + $root->{id}, description => 'Audit trail fixture.' });
        $audited = expect_ok($res, 'POST /rpc/create_product as editor with x-request-id');
        $audited = {} unless ref $audited eq 'HASH';
        is($res->{access}, 'READ WRITE', 'create_product ran READ WRITE');
        is($res->{request_headers}{'x-request-id'}, $rid{create}, 'request.headers carried the client x-request-id');
        like($res->{request_headers}{authorization} // '', qr/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/,
             'request.headers carried the Authorization bearer token');
        my @tokens_sent = ($res->{token});
        my $id = 0 + ($audited->{id} // 0);

        $res = rpc(method => 'POST', fn => 'update_product', claims => $editor,
                   headers => { 'x-request-id' => $rid{update} },
                   args => { id => $id, expected_version => 1, name => "Audited renamed $tag", price => 21.5 });
        my $u = expect_ok($res, 'POST /rpc/update_product as editor with x-request-id');
        is(ref $u eq 'HASH' ? $u->{version} : undef, 2, 'version 2');
        push @tokens_sent, $res->{token};

        my $rows = su_rows(q{SELECT id, actor, role_name, via, request_id, table_name, row_id, action,
                                    old_values::text AS old_values, new_values::text AS new_values,
                                    row_to_json(a)::text AS whole
                             FROM catalog.audit_log a
                             WHERE table_name = 'product' AND row_id = $1 ORDER BY id}, $id);
        is(scalar @$rows, 2, 'two audit rows for the product (read as superuser)')
            or diag($json->encode($rows));
        @audit_ids = map { $_->{id} } @$rows;
        my ($ins, $upd) = map { $_ // {} } @$rows[0, 1];
        is($ins->{action}, 'insert', 'first row: insert');
        is($upd->{action}, 'update', 'second row: update');
        for my $c ([ $ins, 'insert', 'create_product', $rid{create} ],
                   [ $upd, 'update', 'update_product', $rid{update} ]) {
            my ($row, $what, $fn, $want_rid) = @$c;
            is($row->{actor}, $editor_sub, "$what: actor is the JWT sub");
            is($row->{role_name}, 'catalog_editor', "$what: role_name is the JWT role");
            is($row->{via}, "POST /rpc/$fn", "$what: via is 'POST /rpc/$fn'");
            is($row->{request_id}, $want_rid, "$what: request_id is the x-request-id header");
        }
        my $new = eval { $json->decode($ins->{new_values} // 'null') };
        is(ref $new eq 'HASH' ? $new->{sku} : undef, "$SKU-AUD", 'insert: new_values is the row image');
        ok(!defined $ins->{old_values}, 'insert: old_values is null');
        my $o = eval { $json->decode($upd->{old_values} // 'null') };
        my $n = eval { $json->decode($upd->{new_values} // 'null') };
        $o = {} unless ref $o eq 'HASH';
        $n = {} unless ref $n eq 'HASH';
        is($o->{name}, "Audited $tag", 'update: old_values.name');
        is($n->{name}, "Audited renamed $tag", 'update: new_values.name');
        cmp_ok($n->{price} // -1, '==', 21.5, 'update: new_values.price');
        ok(!exists $n->{sku} && !exists $n->{description} && !exists $o->{sku},
           'update: unchanged columns are not in the diff') or diag($upd->{old_values} . ' -> ' . $upd->{new_values});

        # The bearer token (whole, or its signature) and "Bearer " appear in
        # no column of these rows, nor of any audit row.
        my @needles = ((map { my @p = split /\./, $_ // ''; ($_ // (), $p[2] // ()) } @tokens_sent), 'Bearer ');
        is(scalar @needles, 5, 'two tokens and their signatures to look for');
        for my $r ($ins, $upd) {
            ok(index($r->{whole} // '', $r->{request_id} // "\0") >= 0, "$r->{action} row: control, its text holds its request id");
            ok(!grep({ index($r->{whole} // '', $_) >= 0 } @needles),
               "$r->{action} row: no column holds the bearer token");
        }
        my $holding = q{SELECT count(*) AS n FROM catalog.audit_log a
                        WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) AS t(needle)
                                      WHERE position(t.needle in row_to_json(a)::text) > 0)};
        is(su_row($holding, [ $rid{create}, $rid{update} ])->{n}, 2,
           'control: the search finds the two rows by their request ids');
        is(su_row($holding, \@needles)->{n}, 0, 'no audit row holds either bearer token, its signature or "Bearer "');
    };

    # Items of a page, and its item keys.
    my @ITEM_KEYS = sort qw(audit_id occurred_at txid action actor role via request_id table row_id old new seq);
    my $items = sub { my ($b) = @_; return ref $b eq 'HASH' && ref $b->{items} eq 'ARRAY' ? @{ $b->{items} } : () };

    subtest "$mode: product_history" => sub {
        my $id = 0 + ($audited->{id} // 0);
        my $res = rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { id => $id });
        my $b = expect_ok($res, 'GET /rpc/product_history?id=.. as editor');
        is($res->{access}, 'READ ONLY', 'GET ran READ ONLY (STABLE function)');
        my @it = $items->($b);
        is(scalar @it, 2, 'two items');
        is_deeply([ sort keys %{ $it[0] // {} } ], \@ITEM_KEYS, 'item keys');
        is_deeply([ map { $_->{audit_id} } @it ], [ reverse @audit_ids ], 'the audit rows of the product, newest first');
        is_deeply([ map { $_->{action} } @it ], [qw(update insert)], 'update, then insert');
        is_deeply([ map { $_->{request_id} } @it ], [ $rid{update}, $rid{create} ], 'the request ids of the two requests');
        is_deeply([ map { $_->{actor} } @it ], [ $editor_sub, $editor_sub ], 'actor: the JWT sub');
        is_deeply([ map { $_->{role} } @it ], [qw(catalog_editor catalog_editor)], 'role: the JWT role');
        is_deeply([ map { $_->{via} } @it ], [ 'POST /rpc/update_product', 'POST /rpc/create_product' ], 'via');
        is($it[0]{new}{name}, "Audited renamed $tag", 'the update item carries the new name') if @it;
        ok(ref $b eq 'HASH' && exists $b->{next_cursor} && !defined $b->{next_cursor}, 'one page: next_cursor null');

        # Keyset paging through GET: page_size 1, then the cursor.
        my $p1 = expect_ok(rpc(method => 'GET', fn => 'product_history', claims => $editor,
                               args => { id => $id, page_size => 1 }),
                           'GET product_history?page_size=1');
        my @p1 = $items->($p1);
        is_deeply([ map { $_->{request_id} } @p1 ], [ $rid{update} ], 'first page: the update');
        is(ref $p1 eq 'HASH' ? $p1->{next_cursor} : undef, $audit_ids[1], 'next_cursor: the audit id of the last item');
        my $p2 = expect_ok(rpc(method => 'GET', fn => 'product_history', claims => $editor,
                               args => { id => $id, page_size => 1, cursor => $p1->{next_cursor} // 1 }),
                           'GET product_history?page_size=1&cursor=..');
        is_deeply([ map { $_->{request_id} } $items->($p2) ], [ $rid{create} ], 'second page: the insert');
        ok(ref $p2 eq 'HASH' && !defined $p2->{next_cursor}, 'last page: next_cursor null');

        # POST runs READ ONLY; admins inherit the editor's grant.
        $res = rpc(method => 'POST', fn => 'product_history', claims => $admin, args => { id => $id, page_size => 5 });
        $b = expect_ok($res, 'POST /rpc/product_history as admin (STABLE: READ ONLY)');
        is($res->{access}, 'READ ONLY', 'POST ran READ ONLY');
        is_deeply([ map { $_->{audit_id} } $items->($b) ], [ reverse @audit_ids ], 'same items');
        $b = expect_ok(rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { id => -1 }),
                       'GET product_history of a product without audit rows');
        is_deeply($b, { items => [], next_cursor => undef }, 'no items, next_cursor null');

        expect_error(rpc(method => 'GET', fn => 'product_history', args => { id => $id }),
                     'GET product_history as anon', 401, '42501');
        expect_error(rpc(method => 'GET', fn => 'product_history', claims => $anon_with_token, args => { id => $id }),
                     'GET product_history as anon with a token', 401, '42501');
        expect_error(rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { id => $id, page_size => 0 }),
                     'GET product_history?page_size=0', 400, '22023',
                     { field => 'page_size', reason => 'out_of_range', min => 1, max => 100 });
        expect_error(rpc(method => 'POST', fn => 'product_history', claims => $editor, args => { id => $id, page_size => 101 }),
                     'POST product_history page_size 101', 400, '22023',
                     { field => 'page_size', reason => 'out_of_range', max => 100 });
        expect_error(rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { id => $id, cursor => 0 }),
                     'GET product_history?cursor=0', 400, '22023', { field => 'cursor', reason => 'out_of_range', min => 1 });
        expect_error(rpc(method => 'POST', fn => 'product_history', claims => $editor, args => { id => undef }),
                     'POST product_history {"id":null}', 400, '22023', { field => 'id', reason => 'required' });
        expect_error(rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { id => 'abc' }),
                     'GET product_history?id=abc (json_to_record cannot cast)', 400, '22P02');
        my $r = rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { page_size => 5 });
        is($r->{status}, 404, 'GET product_history without id: 404');
        is($r->{body}{code}, 'PGRST202', 'without id: PGRST202 (no database work)');
    };

    subtest "$mode: category_history" => sub {
        # The root was created by the fixture over SQL: via 'sql', the actor
        # from catalog.actor, the role the session's.
        my $res = rpc(method => 'GET', fn => 'category_history', claims => $editor, args => { id => $root->{id} });
        my $b = expect_ok($res, 'GET /rpc/category_history?id=<root> as editor');
        is($res->{access}, 'READ ONLY', 'GET ran READ ONLY');
        my @it = $items->($b);
        is_deeply([ map { $_->{audit_id} } @it ],
                  [ map { $_->{id} } @{ su_rows(q{SELECT id FROM catalog.audit_log WHERE table_name = 'category'
                                                  AND row_id = $1 ORDER BY id DESC}, $root->{id}) } ],
                  'the audit rows of the root, newest first');
        is(scalar @it, 1, 'one item: the refused move of the root wrote nothing');
        is($it[0]{action}, 'insert', 'insert') if @it;
        is($it[0]{via}, 'sql', 'via sql (written outside PostgREST)') if @it;
        is($it[0]{actor}, 'replay-fixture', 'actor from catalog.actor') if @it;
        is($it[0]{role}, scalar $su->selectrow_array(q{SELECT session_user}), 'role: the session user') if @it;
        is($it[0]{table}, 'category', 'table category') if @it;

        # The child category was written through PostgREST by the editor.
        my $child = su_row(q{SELECT id FROM catalog.category WHERE slug = $1}, "$slug-child")->{id} // -1;
        $b = expect_ok(rpc(method => 'POST', fn => 'category_history', claims => $admin, args => { id => 0 + $child }),
                       'POST /rpc/category_history?id=<child> as admin (STABLE: READ ONLY)');
        @it = $items->($b);
        is_deeply([ map { $_->{via} } @it ],
                  [ 'POST /rpc/update_category', 'POST /rpc/update_category', 'POST /rpc/create_category' ],
                  'create and two updates, newest first');
        ok(!grep({ ($_->{actor} // '') ne $editor_sub || ($_->{role} // '') ne 'catalog_editor' } @it),
           'every item: the editor\'s sub and role');
        my %rids = map { $_->{request_id} => 1 } @it;
        is(scalar keys %rids, 3, 'three requests, three request ids');

        expect_error(rpc(method => 'GET', fn => 'category_history', args => { id => $root->{id} }),
                     'GET category_history as anon', 401, '42501');
        expect_error(rpc(method => 'GET', fn => 'category_history', claims => $editor,
                         args => { id => $root->{id}, page_size => 0 }),
                     'GET category_history?page_size=0', 400, '22023',
                     { field => 'page_size', reason => 'out_of_range', min => 1, max => 100 });
    };

    subtest "$mode: audit_by_actor" => sub {
        my @want = map { $_->{id} } @{ su_rows(q{SELECT id FROM catalog.audit_log WHERE actor = $1 ORDER BY id DESC},
                                               $editor_sub) };
        cmp_ok(scalar @want, '>=', 8, "the editor wrote audit rows in this run: " . scalar @want);
        # Every page through GET, 3 items a page, following next_cursor.
        my ($cursor, @got, @tables) = (undef);
        my $pages = 0;
        while ($pages < 100) {
            my %args = (actor => $editor_sub, page_size => 3);
            $args{cursor} = $cursor if defined $cursor;
            my $res = rpc(method => 'GET', fn => 'audit_by_actor', claims => $admin, args => \%args);
            $pages++;
            unless ($res->{status} == 200 && ref $res->{body} eq 'HASH') {
                fail("GET audit_by_actor page $pages") or diag(show($res));
                last;
            }
            push @got, map { $_->{audit_id} } $items->($res->{body});
            push @tables, map { $_->{table} } $items->($res->{body});
            ok(!grep({ ($_->{actor} // '') ne $editor_sub } $items->($res->{body})), "page $pages: only the editor's rows");
            $cursor = $res->{body}{next_cursor};
            last unless defined $cursor;
        }
        is_deeply(\@got, \@want, 'the pages hold every row of the actor once, newest first');
        is($pages, int((@want + 2) / 3), 'page count');
        my %t = map { $_ => 1 } @tables;
        is_deeply([ sort keys %t ], [qw(category product)], 'rows of both tables');

        my $res = rpc(method => 'POST', fn => 'audit_by_actor', claims => $admin, args => { actor => $editor_sub });
        my $b = expect_ok($res, 'POST /rpc/audit_by_actor as admin (STABLE: READ ONLY)');
        is($res->{access}, 'READ ONLY', 'POST ran READ ONLY');
        is(($items->($b))[0]{audit_id}, $want[0], 'newest first') if @want;
        $b = expect_ok(rpc(method => 'GET', fn => 'audit_by_actor', claims => $admin, args => { actor => "nobody-$tag" }),
                       'GET audit_by_actor of an actor without rows');
        is_deeply($b, { items => [], next_cursor => undef }, 'no items');

        expect_error(rpc(method => 'GET', fn => 'audit_by_actor', claims => $editor, args => { actor => $editor_sub }),
                     'GET audit_by_actor as editor', 403, '42501');
        expect_error(rpc(method => 'GET', fn => 'audit_by_actor', args => { actor => $editor_sub }),
                     'GET audit_by_actor as anon', 401, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_by_actor', claims => $admin, args => { actor => '' }),
                     'POST audit_by_actor {"actor":""}', 400, '22023', { field => 'actor' });
        expect_error(rpc(method => 'GET', fn => 'audit_by_actor', claims => $admin, args => { actor => $editor_sub, page_size => 500 }),
                     'GET audit_by_actor?page_size=500', 400, '22023',
                     { field => 'page_size', reason => 'out_of_range', min => 1, max => 100 });
    };

    subtest "$mode: audit_by_request" => sub {
        my $id = 0 + ($audited->{id} // 0);
        for my $what (qw(create update)) {
            my $res = rpc(method => 'GET', fn => 'audit_by_request', claims => $admin, args => { request_id => $rid{$what} });
            my $b = expect_ok($res, "GET /rpc/audit_by_request?request_id=$rid{$what} as admin");
            is($res->{access}, 'READ ONLY', 'GET ran READ ONLY');
            my @it = $items->($b);
            is(scalar @it, 1, "one row for the $what request");
            is($it[0]{row_id}, $id, 'the audited product') if @it;
            is($it[0]{table}, 'product', 'table product') if @it;
            is($it[0]{action}, $what eq 'create' ? 'insert' : 'update', 'action') if @it;
            is($it[0]{request_id}, $rid{$what}, 'request_id') if @it;
            is($it[0]{actor}, $editor_sub, 'actor') if @it;
        }

        # A header with characters outside [A-Za-z0-9._:@/+=-] is stored
        # sanitized; audit_by_request finds it by the raw header value.
        my $raw = "rp $tag <raw>";
        (my $clean = $raw) =~ s{[^A-Za-z0-9._:\@/+=-]}{_}g;
        my $p = expect_ok(rpc(method => 'POST', fn => 'create_product', claims => $editor, headers => { 'x-request-id' => $raw },
                              args => { sku => "$SKU-RID", name => "Raw id $tag", price => 1, category_id => 0 + $root->{id} }),
                          'POST create_product with an x-request-id holding spaces and markup');
        is(su_row(q{SELECT request_id FROM catalog.audit_log WHERE table_name = 'product' AND row_id = $1},
                  ref $p eq 'HASH' ? $p->{id} : -1)->{request_id}, $clean, 'stored sanitized');
        my $b = expect_ok(rpc(method => 'POST', fn => 'audit_by_request', claims => $admin, args => { request_id => $raw }),
                          'POST /rpc/audit_by_request with the raw header value (STABLE: READ ONLY)');
        is_deeply([ map { $_->{request_id} } $items->($b) ], [$clean], 'found by the raw value');

        expect_error(rpc(method => 'GET', fn => 'audit_by_request', claims => $editor, args => { request_id => $rid{create} }),
                     'GET audit_by_request as editor', 403, '42501');
        expect_error(rpc(method => 'GET', fn => 'audit_by_request', args => { request_id => $rid{create} }),
                     'GET audit_by_request as anon', 401, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_by_request', claims => $admin, args => { request_id => '' }),
                     'POST audit_by_request {"request_id":""}', 400, '22023', { field => 'request_id', reason => 'required' });
        expect_error(rpc(method => 'GET', fn => 'audit_by_request', claims => $admin,
                         args => { request_id => $rid{create}, cursor => -5 }),
                     'GET audit_by_request?cursor=-5', 400, '22023', { field => 'cursor', reason => 'out_of_range' });
    };

    subtest "$mode: audit_mask_set, audit_masks, audit_mask_drop" => sub {
        my $akey = "rp_note_$key_tag";       # matches no built-in key pattern
        my %mask = (table_name => 'product', column_name => 'attributes', attribute_key => $akey, method => 'redact');

        my $get = rpc(method => 'GET', fn => 'audit_mask_set', claims => $admin, args => \%mask);
        expect_error($get, 'GET /rpc/audit_mask_set as admin (READ ONLY transaction)', 405, '25006');
        like($get->{body}{message} // '', qr/read-only transaction/, 'message names the read-only transaction');
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', claims => $editor, args => \%mask),
                     'POST audit_mask_set as editor', 403, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', args => \%mask),
                     'POST audit_mask_set as anon', 401, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', claims => $admin, args => { %mask, method => 'rot13' }),
                     'POST audit_mask_set method rot13', 400, '22023', { field => 'method', reason => 'unknown_value' });
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', claims => $admin, args => { %mask, table_name => 'audit_log' }),
                     'POST audit_mask_set table audit_log', 400, '22023', { field => 'table_name', reason => 'unknown_value' });
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', claims => $admin,
                         args => { table_name => 'product', column_name => 'id' }),
                     'POST audit_mask_set column id', 400, '22023', { field => 'column_name', reason => 'not_maskable' });
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', claims => $admin,
                         args => { table_name => 'product', column_name => "no_such_$key_tag" }),
                     'POST audit_mask_set unknown column', 400, '22023', { field => 'column_name', reason => 'unknown_column' });
        expect_error(rpc(method => 'POST', fn => 'audit_mask_set', claims => $admin,
                         args => { table_name => 'product', column_name => 'name', attribute_key => 'x' }),
                     'POST audit_mask_set attribute_key of a text column', 400, '22023',
                     { field => 'attribute_key', reason => 'not_jsonb' });
        is(su_row(q{SELECT count(*) AS n FROM catalog.audit_mask WHERE attribute_key = $1}, $akey)->{n}, 0,
           'nothing declared by the refused calls');

        my $res = rpc(method => 'POST', fn => 'audit_mask_set', claims => $admin, args => \%mask);
        my $m = expect_ok($res, 'POST /rpc/audit_mask_set as admin');
        is($res->{access}, 'READ WRITE', 'POST ran READ WRITE (VOLATILE function)');
        $m = {} unless ref $m eq 'HASH';
        is_deeply([ sort keys %$m ], [ sort qw(table_name column_name attribute_key method created_at created_by) ], 'mask keys');
        is_deeply({ map { $_ => $m->{$_} } keys %mask }, \%mask, 'the declared mask');
        is($m->{created_by}, $admin_sub, 'created_by: the JWT sub');

        $res = rpc(method => 'GET', fn => 'audit_masks', claims => $admin);
        my $all = expect_ok($res, 'GET /rpc/audit_masks as admin');
        is($res->{access}, 'READ ONLY', 'GET ran READ ONLY');
        $all = {} unless ref $all eq 'HASH';
        is_deeply([ sort keys %$all ], [qw(builtin_keys builtin_values declared method)], 'audit_masks keys');
        ok(grep({ ref $_ eq 'HASH' && ($_->{attribute_key} // '') eq $akey && $_->{method} eq 'redact' } @{ $all->{declared} // [] }),
           'the mask is declared');
        ok(grep({ $_ eq 'authorization' } @{ $all->{builtin_keys} // [] }), 'authorization is a built-in key');
        like($all->{method} // '', qr/^(?:hash|redact)$/, 'method of the built-in patterns');
        expect_ok(rpc(method => 'POST', fn => 'audit_masks', claims => $admin, args => {}),
                  'POST /rpc/audit_masks {} as admin (STABLE: READ ONLY)');
        expect_error(rpc(method => 'GET', fn => 'audit_masks', claims => $editor), 'GET audit_masks as editor', 403, '42501');
        expect_error(rpc(method => 'GET', fn => 'audit_masks'), 'GET audit_masks as anon', 401, '42501');

        # A write through PostgREST on another pooled connection uses it.
        my $p = expect_ok(rpc(method => 'POST', fn => 'create_product', claims => $editor,
                              args => { sku => "$SKU-MASK", name => "Masked $tag", price => 2, category_id => 0 + $root->{id},
                                        attributes => { $akey => 'first note', colour => 'blue' } }),
                          'POST create_product with the masked attribute');
        my $pid = ref $p eq 'HASH' ? 0 + $p->{id} : -1;
        my $row = su_row(q{SELECT new_values->'attributes' AS a FROM catalog.audit_log
                           WHERE table_name = 'product' AND row_id = $1 AND action = 'insert'}, $pid);
        is_deeply(eval { $json->decode($row->{a} // 'null') }, { $akey => '[redacted]', colour => 'blue' },
                  'the audit row holds the attribute redacted, the others as they are');
        is(ref $p eq 'HASH' ? $p->{attributes}{$akey} : undef, 'first note', 'the product keeps the value');

        expect_error(rpc(method => 'GET', fn => 'audit_mask_drop', claims => $admin,
                         args => { table_name => 'product', column_name => 'attributes', attribute_key => $akey }),
                     'GET /rpc/audit_mask_drop as admin (READ ONLY transaction)', 405, '25006');
        expect_error(rpc(method => 'POST', fn => 'audit_mask_drop', claims => $editor,
                         args => { table_name => 'product', column_name => 'attributes', attribute_key => $akey }),
                     'POST audit_mask_drop as editor', 403, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_mask_drop', claims => $admin,
                         args => { table_name => 'orders', column_name => 'attributes' }),
                     'POST audit_mask_drop table orders', 400, '22023', { field => 'table_name', reason => 'unknown_value' });
        $res = rpc(method => 'POST', fn => 'audit_mask_drop', claims => $admin,
                   args => { table_name => 'product', column_name => 'attributes', attribute_key => $akey });
        is(expect_ok($res, 'POST /rpc/audit_mask_drop as admin'), JSON::PP::true, 'true: the mask was removed');
        is($res->{access}, 'READ WRITE', 'POST ran READ WRITE');
        $res = rpc(method => 'POST', fn => 'audit_mask_drop', claims => $admin,
                   args => { table_name => 'product', column_name => 'attributes', attribute_key => $akey });
        is(expect_ok($res, 'POST audit_mask_drop again'), JSON::PP::false, 'false: nothing left to remove');
        $all = expect_ok(rpc(method => 'GET', fn => 'audit_masks', claims => $admin), 'GET audit_masks after the drop');
        ok(!grep({ ref $_ eq 'HASH' && ($_->{attribute_key} // '') eq $akey } @{ ref $all eq 'HASH' ? $all->{declared} : [] }),
           'the mask is gone');

        # The next write records the attribute as it is.
        expect_ok(rpc(method => 'POST', fn => 'update_product', claims => $editor,
                      args => { id => $pid, expected_version => 1, attributes => { $akey => 'second note', colour => 'blue' } }),
                  'POST update_product of the attribute after the drop');
        $row = su_row(q{SELECT new_values->'attributes' AS a FROM catalog.audit_log
                        WHERE table_name = 'product' AND row_id = $1 AND action = 'update'}, $pid);
        is_deeply(eval { $json->decode($row->{a} // 'null') }, { $akey => 'second note', colour => 'blue' },
                  'unmasked once the mask is dropped');
    };

    subtest "$mode: audit_seal, audit_head, audit_verify" => sub {
        my $get = rpc(method => 'GET', fn => 'audit_seal', claims => $admin);
        expect_error($get, 'GET /rpc/audit_seal as admin (READ ONLY transaction)', 405, '25006');
        is($get->{stage}, 'main', 'the 25006 comes from the main query');
        expect_error(rpc(method => 'POST', fn => 'audit_seal', claims => $editor, args => {}),
                     'POST audit_seal as editor', 403, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_seal', args => {}), 'POST audit_seal as anon', 401, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_seal', claims => $admin, args => { max_rows => 0 }),
                     'POST audit_seal max_rows 0', 400, '22023',
                     { field => 'max_rows', reason => 'out_of_range', min => 1, max => 1000000 });
        expect_error(rpc(method => 'POST', fn => 'audit_seal', claims => $admin, args => { max_rows => undef }),
                     'POST audit_seal {"max_rows":null}', 400, '22023', { field => 'max_rows', reason => 'required' });

        # Seal everything committed, batch after batch.
        my ($seal, $calls) = ({}, 0);
        while ($calls < 100) {
            my $res = rpc(method => 'POST', fn => 'audit_seal', claims => $admin, args => { max_rows => 10000 });
            $calls++;
            $seal = $res->{body};
            unless ($res->{status} == 200 && ref $seal eq 'HASH') {
                fail('POST /rpc/audit_seal as admin') or diag(show($res));
                $seal = {};
                last;
            }
            if ($calls == 1) {
                is($res->{access}, 'READ WRITE', 'POST audit_seal ran READ WRITE');
                is_deeply([ sort keys %$seal ], [qw(head sealed seq)], 'audit_seal keys');
            }
            last if ($seal->{sealed} // 0) < 10000;
        }
        ok($calls >= 1 && defined $seal->{sealed}, "POST /rpc/audit_seal {\"max_rows\":10000} as admin answered, $calls call(s)");
        like($seal->{head} // '', qr/^[0-9a-f]{64}$/, 'head: 64 hex digits');
        cmp_ok($seal->{seq} // 0, '>=', 2, 'seq: the chain holds rows');
        is(su_row(q{SELECT count(*) AS n FROM catalog.audit_log a
                    WHERE NOT EXISTS (SELECT 1 FROM catalog.audit_seal s WHERE s.audit_id = a.id)})->{n}, 0,
           'every audit row is sealed');
        my $b = expect_ok(rpc(method => 'GET', fn => 'product_history', claims => $editor, args => { id => 0 + ($audited->{id} // 0) }),
                          'GET product_history after the seal');
        my @seq = map { $_->{seq} } $items->($b);
        is(scalar(grep { defined && /^[0-9]+$/ } @seq), 2, 'both items carry their chain position') or diag($json->encode(\@seq));

        my $res = rpc(method => 'GET', fn => 'audit_head', claims => $admin);
        my $head = expect_ok($res, 'GET /rpc/audit_head as admin');
        is($res->{access}, 'READ ONLY', 'GET ran READ ONLY');
        $head = {} unless ref $head eq 'HASH';
        is_deeply([ sort keys %$head ], [ sort qw(audit_id hash seq sealed_at) ], 'audit_head keys');
        my $last = su_row(q{SELECT seq, encode(chain_hash, 'hex') AS hash FROM catalog.audit_seal ORDER BY seq DESC LIMIT 1});
        is($head->{seq}, $last->{seq}, 'head seq: the last seal of catalog.audit_seal');
        is($head->{hash}, $last->{hash}, 'head hash: the chain hash of that seal');
        is_deeply(expect_ok(rpc(method => 'POST', fn => 'audit_head', claims => $admin, args => {}),
                            'POST /rpc/audit_head {} as admin (STABLE: READ ONLY)'),
                  $head, 'POST returns the same head');
        expect_error(rpc(method => 'GET', fn => 'audit_head', claims => $editor), 'GET audit_head as editor', 403, '42501');
        expect_error(rpc(method => 'GET', fn => 'audit_head'), 'GET audit_head as anon', 401, '42501');

        $res = rpc(method => 'GET', fn => 'audit_verify', claims => $admin);
        my $v = expect_ok($res, 'GET /rpc/audit_verify as admin');
        is($res->{access}, 'READ ONLY', 'GET ran READ ONLY');
        $v = {} unless ref $v eq 'HASH';
        ok(JSON::PP::is_bool($v->{ok}) && $v->{ok}, 'ok: JSON true') or diag($json->encode($v));
        ok(exists $v->{first_broken} && !defined $v->{first_broken}, 'first_broken: null');
        cmp_ok($v->{checked} // -1, '>=', $head->{seq} // 0, 'checked: every seal up to the head');
        is_deeply([ sort keys %{ $v->{head} // {} } ], [qw(hash seq)], 'head: {seq, hash}');

        # With the exported anchor (GET sends its values as strings).
        $v = expect_ok(rpc(method => 'GET', fn => 'audit_verify', claims => $admin,
                           args => { anchor_seq => $head->{seq} // 0, anchor_hash => $head->{hash} // '' }),
                       'GET audit_verify?anchor_seq=..&anchor_hash=.. (the head)');
        ok(ref $v eq 'HASH' && $v->{ok}, 'ok with the anchor') or diag($json->encode($v));
        $v = expect_ok(rpc(method => 'POST', fn => 'audit_verify', claims => $admin,
                           args => { anchor_seq => 0 + ($head->{seq} // 0), anchor_hash => 'ab' x 32 }),
                       'POST audit_verify with a wrong anchor hash (STABLE: READ ONLY)');
        ok(ref $v eq 'HASH' && JSON::PP::is_bool($v->{ok}) && !$v->{ok}, 'ok: JSON false') or diag($json->encode($v));
        is(ref $v eq 'HASH' && ref $v->{first_broken} eq 'HASH' ? $v->{first_broken}{reason} : undef, 'anchor_mismatch',
           'first_broken.reason: anchor_mismatch');

        expect_error(rpc(method => 'GET', fn => 'audit_verify', claims => $admin, args => { anchor_seq => 1, anchor_hash => 'xyz' }),
                     'GET audit_verify?anchor_hash=xyz', 400, '22023', { field => 'anchor_hash', reason => 'invalid_format' });
        expect_error(rpc(method => 'GET', fn => 'audit_verify', claims => $admin, args => { anchor_seq => 1 }),
                     'GET audit_verify?anchor_seq=1 without the hash', 400, '22023', { field => 'anchor_hash', reason => 'required' });
        expect_error(rpc(method => 'GET', fn => 'audit_verify', claims => $admin, args => { anchor_seq => -1, anchor_hash => '0' x 64 }),
                     'GET audit_verify?anchor_seq=-1', 400, '22023', { field => 'anchor_seq', reason => 'out_of_range', min => 0 });
        expect_error(rpc(method => 'GET', fn => 'audit_verify', claims => $editor), 'GET audit_verify as editor', 403, '42501');
        expect_error(rpc(method => 'GET', fn => 'audit_verify'), 'GET audit_verify as anon', 401, '42501');
    };

    subtest "$mode: audit_maintain and audit_drop_partitions" => sub {
        my $count_parts = sub {
            return su_row(q{SELECT count(*) AS n FROM pg_catalog.pg_inherits
                            WHERE inhparent = 'catalog.audit_log'::regclass})->{n};
        };
        my $get = rpc(method => 'GET', fn => 'audit_maintain', claims => $admin);
        expect_error($get, 'GET /rpc/audit_maintain as admin (READ ONLY transaction)', 405, '25006');
        like($get->{body}{message} // '', qr/read-only transaction/, 'message names the read-only transaction');
        expect_error(rpc(method => 'POST', fn => 'audit_maintain', claims => $editor, args => {}),
                     'POST audit_maintain as editor', 403, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_maintain', args => {}), 'POST audit_maintain as anon', 401, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_maintain', claims => $admin, args => { months_ahead => 0 }),
                     'POST audit_maintain months_ahead 0', 400, '22023',
                     { field => 'months_ahead', reason => 'out_of_range', min => 1, max => 36 });
        expect_error(rpc(method => 'POST', fn => 'audit_maintain', claims => $admin, args => { months_ahead => 37 }),
                     'POST audit_maintain months_ahead 37', 400, '22023', { field => 'months_ahead', reason => 'out_of_range' });

        my $res = rpc(method => 'POST', fn => 'audit_maintain', claims => $admin, args => {});
        my $m = expect_ok($res, 'POST /rpc/audit_maintain {} as admin');
        is($res->{access}, 'READ WRITE', 'POST ran READ WRITE');
        $m = {} unless ref $m eq 'HASH';
        is_deeply([ sort keys %$m ], [qw(created moved)], 'audit_maintain keys');
        is(ref $m->{created}, 'ARRAY', 'created: an array');
        ok(defined $m->{moved} && $m->{moved} =~ /^[0-9]+$/, 'moved: a count');
        my $parts = $count_parts->();
        cmp_ok($parts, '>=', 5, "the default and at least four monthly partitions: $parts");
        $m = expect_ok(rpc(method => 'POST', fn => 'audit_maintain', claims => $admin, args => { months_ahead => 3 }),
                       'POST audit_maintain {"months_ahead":3} again');
        is_deeply($m, { created => [], moved => 0 }, 'nothing to do the second time');

        $get = rpc(method => 'GET', fn => 'audit_drop_partitions', claims => $admin,
                   args => { older_than => '2000-01-01T00:00:00Z' });
        expect_error($get, 'GET /rpc/audit_drop_partitions as admin (READ ONLY transaction)', 405, '25006');
        expect_error(rpc(method => 'POST', fn => 'audit_drop_partitions', claims => $editor,
                         args => { older_than => '2000-01-01T00:00:00Z' }),
                     'POST audit_drop_partitions as editor', 403, '42501');
        expect_error(rpc(method => 'POST', fn => 'audit_drop_partitions', claims => $admin, args => { older_than => undef }),
                     'POST audit_drop_partitions {"older_than":null}', 400, '22023',
                     { field => 'older_than', reason => 'required' });
        expect_error(rpc(method => 'POST', fn => 'audit_drop_partitions', claims => $admin, args => { older_than => 'last tuesday' }),
                     'POST audit_drop_partitions older_than "last tuesday" (json_to_record cannot cast)', 400, '22007');
        my $r = rpc(method => 'POST', fn => 'audit_drop_partitions', claims => $admin, args => {});
        is($r->{status}, 404, 'POST audit_drop_partitions {}: 404 (older_than has no default)');
        is($r->{body}{code}, 'PGRST202', '{}: PGRST202');

        $res = rpc(method => 'POST', fn => 'audit_drop_partitions', claims => $admin,
                   args => { older_than => '2000-01-01T00:00:00Z' });
        is_deeply(expect_ok($res, 'POST /rpc/audit_drop_partitions {"older_than":"2000-01-01T00:00:00Z"} as admin'),
                  { dropped => [], kept => [] }, 'no partition ends before 2000');
        is($res->{access}, 'READ WRITE', 'POST ran READ WRITE');
        is($count_parts->(), $parts, 'every partition still there');
    };

    subtest "$mode: rate limit (db-pre-request) and CSRF" => sub {
        # An editor limited to 2 list_categories calls per 2000 s.
        my $set = expect_ok(rpc(method => 'POST', fn => 'rate_limit_set', claims => $admin,
                                args => { caller_class => 'editor', action => 'list_categories', rate => 0.001, burst => 2 }),
                            'POST rate_limit_set as admin');
        is($set->{burst}, 2, 'the limit is stored');
        expect_error(rpc(method => 'POST', fn => 'rate_limit_set', claims => $editor,
                         args => { caller_class => 'editor', action => 'read', rate => 1, burst => 1 }),
                     'POST rate_limit_set as editor', 403, '42501');
        my $limits = expect_ok(rpc(method => 'GET', fn => 'rate_limits', claims => $admin), 'GET rate_limits as admin');
        ok((grep { $_->{action} eq 'list_categories' && $_->{caller_class} eq 'editor' } @{ $limits->{limits} // [] }),
           'rate_limits lists it');
        my $limited = { %$editor, sub => "replay-limited-$tag" };
        expect_ok(rpc(method => 'GET', fn => 'list_categories', claims => $limited), 'GET list_categories 1 of 2');
        expect_ok(rpc(method => 'GET', fn => 'list_categories', claims => $limited), 'GET list_categories 2 of 2');
        my $r = rpc(method => 'GET', fn => 'list_categories', claims => $limited);
        is($r->{status}, 429, 'the third: HTTP 429') or diag(show($r));
        is($r->{stage}, 'pre_request', 'refused by the pre-request, before the function ran');
        is($r->{body}{code}, 'PT429', 'body code PT429');
        like($r->{headers}{'Retry-After'} // '', qr/^(?:99[89]|1000)$/, 'Retry-After header: the wait in seconds');
        is($r->{headers}{'RateLimit-Limit'}, '2', 'RateLimit-Limit header');
        is($r->{headers}{'RateLimit-Remaining'}, '0', 'RateLimit-Remaining header');
        ok(defined $r->{headers}{'RateLimit-Reset'}, 'RateLimit-Reset header');
        expect_ok(rpc(method => 'GET', fn => 'list_categories', claims => { %$editor, sub => "replay-other-$tag" }),
                  'another subject is not limited');
        expect_ok(rpc(method => 'GET', fn => 'search_products', claims => $limited, args => { q => 'replay' }),
                  'the limited subject may still search (another scope)');
        is(expect_ok(rpc(method => 'POST', fn => 'rate_limit_drop', claims => $admin,
                         args => { caller_class => 'editor', action => 'list_categories' }),
                     'POST rate_limit_drop as admin'), JSON::PP::true, 'the limit is dropped');
        expect_ok(rpc(method => 'GET', fn => 'list_categories', claims => $limited),
                  'back on the defaults, the subject is served again');

        # CSRF: a cookie session (the proxy turned the cookie into the JWT).
        my $session = { session => "replay-session-$tag" };
        my $t = rpc(method => 'POST', fn => 'csrf_token', claims => $editor, cookies => $session, args => {});
        my $tok = expect_ok($t, 'POST csrf_token with a session cookie');
        like($tok->{token} // '', qr/^v1\.[0-9]+\.[0-9a-f]{32}\.[0-9a-f]{64}$/, 'a signed token');
        my $cookie_name = $tok->{cookie} // '';
        like($t->{headers}{'Set-Cookie'} // '', qr/^\Q$cookie_name\E=\Q$tok->{token}\E; Path=\/; Secure; HttpOnly; SameSite=Strict$/,
             'Set-Cookie response header');
        my %with_token = (cookies => { %$session, $cookie_name => $tok->{token} },
                          headers => { $tok->{header} => $tok->{token} });
        expect_ok(rpc(method => 'POST', fn => 'create_category', claims => $editor, %with_token,
                      args => { name => "Csrf $tag", slug => "$slug-csrf" }),
                  'a cookie-session write with the token');
        my $e = rpc(method => 'POST', fn => 'create_category', claims => $editor, cookies => $session,
                    args => { name => "Csrf2 $tag", slug => "$slug-csrf2" });
        expect_error($e, 'a cookie-session write without the token', 403, 'PT403', { reason => 'csrf_missing' });
        my $other = rpc(method => 'POST', fn => 'create_category', claims => $editor,
                        cookies => { session => "replay-session-other-$tag", $cookie_name => $tok->{token} },
                        headers => { $tok->{header} => $tok->{token} },
                        args => { name => "Csrf3 $tag", slug => "$slug-csrf3" });
        expect_error($other, 'the token with another session', 403, 'PT403', { reason => 'csrf_invalid' });
        # this refusal was sent the token (header and cookie): it must not echo it
        unlike($json->encode({ body => $other->{body}, headers => $other->{headers} }), qr/\Q$tok->{token}\E/,
               'the refusal (body and headers) does not echo the token it was sent');
        expect_ok(rpc(method => 'POST', fn => 'create_category', claims => $editor,
                      args => { name => "Csrf4 $tag", slug => "$slug-csrf4" }),
                  'a bearer write without a session cookie needs no token');
        expect_ok(rpc(method => 'GET', fn => 'list_categories', claims => $editor, cookies => $session),
                  'a GET with the session cookie needs no token');
    };

    subtest "$mode: every function was replayed" => sub {
        ok($called{$mode}{$_}, "$_ was called") for sort keys %COVERED;
    };

    subtest "$mode: statements as configured" => sub {
        for my $i (0 .. $#{ $POOL{$mode}{conns} }) {
            my $dbh = $POOL{$mode}{conns}[$i];
            my ($named) = $dbh->selectrow_array(
                q{SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%pgrst_source%' OR statement LIKE 'select set_config(%'});
            if ($mode eq 'prepared') {
                cmp_ok($named, '>', 0, "connection $i: named prepared statements in use");
            }
            else {
                is($named, 0, "connection $i: no named prepared statement");
            }
        }
    };
}

for my $mode (qw(prepared unprepared)) {
    $MODE = $mode;
    $POOL{$mode} = { conns => [ map { connect_authenticator($mode eq 'prepared') } 1 .. 2 ], next => 0 };
    scenario($mode);
}

# ---------------------------------------------------------------------------
# The bearer token never reaches a table
# ---------------------------------------------------------------------------
subtest 'authorization header never stored' => sub {
    my $cols = $su->selectall_arrayref(q{
        SELECT format('%I.%I', n.nspname, c.relname) AS rel, quote_ident(a.attname) AS col,
               t.typname = 'bytea' AS is_bytea
        FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        WHERE n.nspname IN ('catalog', 'catalog_api') AND c.relkind IN ('r', 'p', 'm')
          AND (t.typcategory = 'S' OR t.typname IN ('json', 'jsonb', 'bytea', 'xml')
               OR t.typelem <> 0 AND (SELECT typcategory FROM pg_type e WHERE e.oid = t.typelem) = 'S')
        ORDER BY 1, 2}, { Slice => {} });
    ok(@$cols > 0, 'text-like columns of catalog.* found: ' . scalar(@$cols));
    ok(@tokens > 0, 'bearer tokens were sent: ' . scalar(@tokens));
    # The whole token, its signature alone, and any "Bearer " string.
    my @needles = ((map { my @p = split /\./; ($_, $p[2]) } @tokens), 'Bearer ');
    my @hits;
    for my $c (@$cols) {
        my $text = $c->{is_bytea} ? "encode($c->{col}, 'escape')" : "$c->{col}::text";
        my ($n) = $su->selectrow_array(
            "SELECT count(*) FROM $c->{rel} WHERE EXISTS "
            . "(SELECT 1 FROM unnest(\$1::text[]) AS n(needle) WHERE position(n.needle in $text) > 0)",
            undef, \@needles);
        push @hits, "$c->{rel}.$c->{col} ($n rows)" if $n;
    }
    is_deeply(\@hits, [], 'no text column of catalog.* contains a bearer token');
};

# ---------------------------------------------------------------------------
# 40001 / 40P01: PostgREST would re-run the request; the extension must
# never make it do so.
# ---------------------------------------------------------------------------
is($retries, 0, 'no request needed a 40001/40P01 retry') or diag(join("\n", @retried));

for my $mode (keys %POOL) {
    $_->disconnect for @{ $POOL{$mode}{conns} };
}
$su->disconnect;
done_testing();
