#!/usr/bin/perl
# check_repo.pl: repository checks of the catalog harness.
#
# Usage (from anywhere; paths are relative to the repository root):
#   check_repo.pl list              print the repository's files, NUL-separated
#   check_repo.pl emoji [FILE...]   no emoji or pictograph in FILEs (default:
#                                   every file that `list` prints)
#   check_repo.pl commits [N|all]   no emoji in the last N (default: all) commit messages
#   check_repo.pl warnings LOG      no line containing "warning:" (or a warning
#                                   that -Werror made an error) in a build log
#   check_repo.pl selftest          prove that the emoji check catches an emoji
#
# Exit status: 0 passed, 1 failed (findings printed as file:line:col), 2 usage
# or internal error, 3 skipped (commits: not a git checkout).
#
# "The repository's files" are `git ls-files --cached --others
# --exclude-standard` (tracked files plus new files not yet added, never
# ignored ones) in a git checkout, else every file except build and run
# directories.  Every file is scanned, binary ones too (decoded as UTF-8
# with replacement): a NUL byte must not hide an emoji.
# This file itself contains no emoji: the self-test builds them with \x{...}.

use strict;
use warnings;
use Cwd qw(abs_path);
use Encode qw(decode encode);
use File::Basename qw(dirname);
use File::Find qw(find);
use File::Temp qw(tempdir);
use charnames ();

my $ROOT = abs_path(dirname(abs_path($0)) . '/../..');

# Emoji and pictographs: the emoji blocks of the supplementary planes,
# Miscellaneous Symbols and Dingbats, Miscellaneous Symbols and Arrows, the
# emoji of Miscellaneous Technical, the emoji joiners and modifiers (variation
# selector 16, zero width joiner, combining keycap, tag characters) and the
# few emoji of the CJK blocks; and every character Unicode shows as an emoji
# by default (Emoji_Presentation: U+25FD, U+25FE and any later additions).
# Arrows, box drawing and letters are allowed, and so are the pictographs
# shown as text unless a variation selector 16 follows (which is caught).
my $EMOJI = qr/[\x{1F000}-\x{1FAFF}\x{2600}-\x{27BF}\x{2B00}-\x{2BFF}\x{231A}\x{231B}\x{2328}\x{23CF}\x{23E9}-\x{23F3}\x{23F8}-\x{23FA}\x{FE0F}\x{200D}\x{20E3}\x{E0020}-\x{E007F}\x{3030}\x{303D}\x{3297}\x{3299}\p{Emoji_Presentation}]/;

# Directories never scanned or copied outside git: build and run artefacts.
my %SKIP_DIR = map { $_ => 1 } qw(.git .run .tmp tmp_check tmp_check_iso results
                                  output_iso log);

# git_ok: true when ROOT is a git work tree and git runs.
sub git_ok {
    return 0 unless -e "$ROOT/.git";
    my $out = `git -c safe.directory='*' -C '$ROOT' rev-parse --is-inside-work-tree 2>/dev/null`;
    return defined $out && $out =~ /^true/;
}

# repo_files(LINKS): the repository's files, relative to ROOT, sorted; with
# LINKS true, its symbolic links instead (never followed: the emoji check
# reads a link's target as text, since git stores the target as the blob).
sub repo_files {
    my ($links) = @_;
    my $want = sub { my ($p) = @_; return $links ? -l $p : (-f $p && !-l $p) };
    my @files;
    if (git_ok()) {
        open(my $git, '-|', 'git', '-c', 'safe.directory=*', '-C', $ROOT, 'ls-files', '-z',
             '--cached', '--others', '--exclude-standard')
            or die "check_repo: cannot run git: $!\n";
        local $/ = "\0";
        while (my $f = <$git>) {
            chomp $f;
            push @files, $f if $want->("$ROOT/$f");
        }
        close($git) or die "check_repo: git ls-files failed\n";
    } else {
        find({ no_chdir => 1, wanted => sub {
            return if $File::Find::name eq $ROOT;
            my $rel = substr($File::Find::name, length($ROOT) + 1);
            if (-d $_ && !-l $_) {
                $File::Find::prune = 1 if $SKIP_DIR{ (split m{/}, $rel)[-1] };
                return;
            }
            return if $rel =~ /\.(o|so|bc)$/ || !$want->($_);
            push @files, $rel;
        } }, $ROOT);
    }
    my %seen;
    return sort grep { !$seen{$_}++ } @files;
}

# describe(CHAR): "U+1F600 GRINNING FACE".
sub describe {
    my ($c) = @_;
    my $name = charnames::viacode(ord $c) // 'unnamed';
    return sprintf('U+%04X %s', ord $c, $name);
}

# scan_text(LABEL, TEXT): findings "LABEL:line:col: U+XXXX NAME" for each
# emoji in TEXT (a byte string, decoded as UTF-8 with replacement, or as
# UTF-16 when it starts with a UTF-16 byte order mark).
sub scan_text {
    my ($label, $bytes) = @_;
    my @found;
    my $enc = $bytes =~ /\A\xFF\xFE/ ? 'UTF-16LE' : $bytes =~ /\A\xFE\xFF/ ? 'UTF-16BE' : 'UTF-8';
    my $text = decode($enc, $enc eq 'UTF-8' ? $bytes : substr($bytes, 2), Encode::FB_DEFAULT);
    my $line = 0;
    for my $l (split /\n/, $text, -1) {
        $line++;
        while ($l =~ /($EMOJI)/g) {
            push @found, sprintf('%s:%d:%d: %s', $label, $line, $-[0] + 1, describe($1));
        }
    }
    return @found;
}

# scan_file(PATH, LABEL): findings in one file, binary or not.
sub scan_file {
    my ($path, $label) = @_;
    open(my $fh, '<:raw', $path) or return ("$label: cannot read: $!");
    local $/;
    my $bytes = <$fh> // '';
    close $fh;
    return scan_text($label, $bytes);
}

sub cmd_list {
    local $\ = undef;
    print "$_\0" for repo_files();
    return 0;
}

# tree_findings: (number of entries scanned, findings) for the whole tree
# at ROOT: every file, its path, and every symbolic link's path and target.
sub tree_findings {
    my ($n, @found) = (0);
    for my $f (repo_files()) {
        $n++;
        # the path too: a file named with an emoji is in the code base
        push @found, map { "path $_" } scan_text($f, $f);
        push @found, scan_file("$ROOT/$f", $f);
    }
    for my $f (repo_files(1)) {
        $n++;
        push @found, map { "path $_" } scan_text($f, $f);
        push @found, map { "link target $_" } scan_text($f, readlink("$ROOT/$f") // '');
    }
    return ($n, @found);
}

sub cmd_emoji {
    my @args = @_;
    my @found;
    my $n = 0;
    if (@args) {
        for my $f (@args) { $n++; push @found, scan_file($f, $f); }
    } else {
        my ($tn, @tf) = tree_findings();
        $n += $tn;
        push @found, @tf;
    }
    print "$_\n" for @found;
    printf "emoji check: %d file(s) scanned, %d finding(s)\n", $n, scalar @found;
    return @found ? 1 : 0;
}

sub cmd_commits {
    my ($limit) = @_;
    $limit //= 'all';
    die "check_repo: commits: N must be a number or all\n" unless $limit =~ /^(?:\d+|all)$/;
    unless (git_ok()) {
        print "commit message check: not a git checkout, skipped\n";
        return 3;
    }
    if (system("git -c safe.directory='*' -C '$ROOT' rev-parse -q --verify HEAD >/dev/null 2>&1") != 0) {
        print "commit message check: no commits yet, 0 messages checked\n";
        return 0;
    }
    open(my $git, '-|', 'git', '-c', 'safe.directory=*', '-C', $ROOT, 'log',
         ($limit eq 'all' ? () : ("-n$limit")), '--format=%H%x00%B%x00')
        or die "check_repo: cannot run git log: $!\n";
    local $/;
    my $all = <$git> // '';
    close($git) or die "check_repo: git log failed\n";
    my @parts = split /\0/, $all;
    my (@found, $n);
    while (@parts >= 2) {
        my ($hash, $msg) = splice(@parts, 0, 2);
        $hash =~ s/^\s+//;
        $n++;
        push @found, scan_text('commit ' . substr($hash, 0, 12), $msg);
    }
    print "$_\n" for @found;
    printf "commit message check: %d message(s) checked, %d finding(s)\n", $n // 0, scalar @found;
    return @found ? 1 : 0;
}

sub cmd_warnings {
    my ($log) = @_;
    die "check_repo: warnings: LOG argument missing\n" unless defined $log;
    open(my $fh, '<', $log) or die "check_repo: cannot read $log: $!\n";
    my @found;
    while (my $l = <$fh>) {
        # "warning:", and warnings that -Werror turned into errors
        push @found, "$log:$.: $l" if index($l, 'warning:') >= 0 || index($l, '[-Werror') >= 0;
    }
    close $fh;
    print for @found;
    printf "compiler warning check: %d warning line(s)\n", scalar @found;
    return @found ? 1 : 0;
}

# selftest: the checker must find emoji written to a file (in process and
# through the command line) and must not flag ordinary non-ASCII text.
sub cmd_selftest {
    my $dir = tempdir('catalog-emoji-selftest-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @fail;
    my $write = sub {
        my ($name, $text) = @_;
        my $path = "$dir/$name";
        open(my $fh, '>:encoding(UTF-8)', $path) or die "check_repo: cannot write $path: $!\n";
        print $fh $text;
        close $fh or die "check_repo: cannot write $path: $!\n";
        return $path;
    };
    my $bad = $write->('bad.sql', "select 1;\nselect 'smile \x{1F600}';\n");
    my @f = scan_file($bad, 'bad.sql');
    push @fail, "U+1F600 not found in process (got: @f)"
        unless @f == 1 && $f[0] =~ /^bad\.sql:2:\d+: U\+1F600 /;

    my $heart = $write->('heart.md', "ok\nlove \x{2764}\x{FE0F} it\n");
    @f = scan_file($heart, 'heart.md');
    push @fail, "U+2764 U+FE0F not both found (got: @f)" unless @f == 2;

    # a binary file (a NUL byte first) is scanned too
    my $bin = "$dir/seed.bin";
    open(my $bh, '>:raw', $bin) or die "check_repo: cannot write $bin: $!\n";
    print $bh "\0a" . encode('UTF-8', "\x{200D}") . "b";
    close $bh or die "check_repo: cannot write $bin: $!\n";
    @f = scan_file($bin, 'seed.bin');
    push @fail, "U+200D in a binary file not found (got: @f)"
        unless @f == 1 && $f[0] =~ /U\+200D /;

    # one character of each range and kind of the pattern, each alone
    for my $cp (0x1F300, 0x1FA70, 0x1F004, 0x2600, 0x2705, 0x27B0, 0x2B50, 0x231A, 0x23F0,
                0x23F8, 0xFE0F, 0x20E3, 0xE0067, 0x3030, 0x3299, 0x25FD, 0x25FE) {
        my $one = $write->('one.txt', "x " . chr($cp) . " y\n");
        @f = scan_file($one, 'one.txt');
        push @fail, sprintf('U+%04X not found (got: @f)', $cp) unless @f == 1;
    }
    # UTF-16 with a byte order mark
    my $u16 = "$dir/u16.txt";
    open(my $uh, '>:raw', $u16) or die "check_repo: cannot write $u16: $!\n";
    print $uh "\xFF\xFE" . encode('UTF-16LE', "ok \x{1F600}\n");
    close $uh or die "check_repo: cannot write $u16: $!\n";
    @f = scan_file($u16, 'u16.txt');
    push @fail, "U+1F600 in UTF-16 not found (got: @f)" unless @f == 1;

    my $good = $write->('good.txt', "caf\x{E9} \x{2192} \x{2500}\x{2502} \x{65E5}\x{672C} \x{2014} \x{00A9}\n");
    @f = scan_file($good, 'good.txt');
    push @fail, "false positive on ordinary text (got: @f)" if @f;

    my @msg = scan_text('commit test', encode('UTF-8', "Add search\n\nShips it \x{1F680}\n"));
    push @fail, "emoji in a commit message not found" unless @msg == 1;

    my $quiet = sub { system(join(' ', map { quotemeta } @_) . ' >/dev/null 2>&1') >> 8 };

    # a symbolic link is not followed, but its target is text of the code
    # base (git stores it as the link's blob): a tree whose only finding is
    # a link's target fails the whole-tree check
    my $tree = "$dir/tree";
    mkdir $tree or die "check_repo: cannot create $tree: $!\n";
    symlink(encode('UTF-8', "target-\x{1F600}"), "$tree/link") or die "check_repo: cannot link: $!\n";
    symlink('plain-target', "$tree/plain") or die "check_repo: cannot link: $!\n";
    my $save_root = $ROOT;
    $ROOT = $tree;
    my ($tn, @tf) = tree_findings();
    $ROOT = $save_root;
    push @fail, "an emoji in a symbolic link's target not found (got: @tf)"
        unless $tn == 2 && @tf == 1 && $tf[0] =~ /^link target link:1:\d+: U\+1F600 /;
    my $rc = $quiet->($^X, $0, 'emoji', $bad);
    push @fail, "command line: exit $rc for a file with an emoji, expected 1" unless $rc == 1;
    $rc = $quiet->($^X, $0, 'emoji', $good);
    push @fail, "command line: exit $rc for a clean file, expected 0" unless $rc == 0;

    if (@fail) {
        print "emoji checker self-test FAILED: $_\n" for @fail;
        return 1;
    }
    print "emoji checker self-test: an emoji in a temporary file is caught, ordinary text passes\n";
    return 0;
}

my %cmd = (list => \&cmd_list, emoji => \&cmd_emoji, commits => \&cmd_commits,
           warnings => \&cmd_warnings, selftest => \&cmd_selftest);
my $what = shift @ARGV // '';
unless ($cmd{$what}) {
    print STDERR "usage: check_repo.pl list | emoji [FILE...] | commits [N] | warnings LOG | selftest\n";
    exit 2;
}
my $rc = eval { $cmd{$what}->(@ARGV) };
if (!defined $rc) {
    print STDERR $@ || "check_repo: unknown error\n";
    exit 2;
}
exit $rc;
