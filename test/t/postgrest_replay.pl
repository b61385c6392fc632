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
my $JWT_SECRET   = 'replay-secret-' . $$ . '-0123456789abcdefghijklmnop';

# Every function of catalog_api and the replay cases that call it.  A new
# function in the schema without an entry here fails the first assertion.
my %COVERED = map { $_ => 1 } qw(
    archive_product create_category create_product get_product health
    list_categories product_facets purge_idempotency refresh_search_terms
    search_products update_category update_product
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

# rpc(method => GET|POST, fn => name, args => {..}, claims => {..} | undef)
# Returns { status, headers, body, attempts, request }, plus sqlstate and
# stage (begin, set_config, main, commit) for errors.
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
                      $role, $claims_json, $method, $path, $json->encode(\%headers), '{}',
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
        if ($sth && $sth->execute(@set_values)) {
            $sth->finish;
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
        else {
            $fail->();
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
           'refresh_search_terms returns the number of words the dictionary now holds');
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
                     'POST purge_idempotency batch_size 0 as admin', 400, '22003',
                     { field => 'batch_size', reason => 'out_of_range' });
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
