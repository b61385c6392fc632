#!/usr/bin/perl
# valgrind_report.pl LOGDIR SRCDIR: the memory errors of the extension in
# the valgrind memcheck logs of a server run (one LOGDIR/<pid>.log per
# process), for `make test` (test/harness/test.sh, section "valgrind").
#
# An error record counts when one of its first 8 frames is code of the
# extension: a frame in catalog.so, or one that names a source file of
# SRCDIR/src (the extension is built with -g; Debian's postgres binary has
# no line information, so core frames never name a file).  Records of kind
# "Syscall param ... points to uninitialised byte(s)" do not count: they
# are core writing padding bytes of its own structures to disk or to the
# WAL (the relcache init file, WAL records), which core's own valgrind
# suppression file lists; the Debian binary lacks the symbols that file
# matches on.  Everything else counts: invalid reads and writes, use of
# uninitialised values, invalid frees, overlapping copies.
#
# Prints each distinct counted record once (its kind and first 12 frames,
# how often, in which processes) and a summary line; exits 0 when there is
# none, 1 when there is one or more, 2 when no log could be read.
use strict;
use warnings;

my ($logdir, $srcdir) = @ARGV;
die "usage: $0 LOGDIR SRCDIR\n" unless defined $srcdir;

opendir(my $sd, "$srcdir/src") or die "cannot read $srcdir/src: $!\n";
my %ours = map { $_ => 1 } grep { /\.[ch]\z/ } readdir($sd);
closedir($sd);

opendir(my $ld, $logdir) or do { print "valgrind: no log directory $logdir\n"; exit 2 };
my @logs = sort grep { /\.log\z/ } readdir($ld);
closedir($ld);
if (!@logs)
{
	print "valgrind: no log in $logdir\n";
	exit 2;
}

sub ours
{
	my ($frame) = @_;
	return 1 if $frame =~ /catalog\.so/;
	return 1 if $frame =~ /\(([\w.]+\.[ch]):\d+\)/ && $ours{$1};
	return 0;
}

my (%seen, @order);
my ($records, $processes) = (0, 0);
for my $log (@logs)
{
	open(my $fh, '<', "$logdir/$log") or next;
	$processes++;
	(my $pid = $log) =~ s/\.log\z//;
	my @cur;
	my $flush = sub {
		return unless @cur;
		my @rec = @cur;
		@cur = ();
		$records++;
		my $kind = $rec[0];
		return if $kind =~ /^Syscall param .* uninitialised byte/;
		my @frames = grep { /^\s*(?:at|by) / } @rec;
		return unless grep { ours($_) } @frames[0 .. ($#frames < 7 ? $#frames : 7)];
		(my $k = $kind) =~ s/\d+ bytes/N bytes/g;
		$k =~ s/0x[0-9A-Fa-f]+/ADDR/g;
		my @top = map { (my $f = $_) =~ s/0x[0-9A-Fa-f]+: //; $f =~ s/^\s+//; $f } @frames[0 .. ($#frames < 11 ? $#frames : 11)];
		my $key = join("\n", $k, @top);
		if (!$seen{$key})
		{
			$seen{$key} = { n => 0, pids => {}, text => join("\n", $k, map { "    $_" } @top) };
			push @order, $key;
		}
		$seen{$key}{n}++;
		$seen{$key}{pids}{$pid} = 1;
	};
	while (my $line = <$fh>)
	{
		chomp $line;
		$line =~ s/^==\d+== ?//;
		if ($line eq '')
		{
			$flush->();
		}
		else
		{
			push @cur, $line;
		}
	}
	$flush->();
	close($fh);
}

for my $key (@order)
{
	my $e = $seen{$key};
	my @pids = sort keys %{ $e->{pids} };
	printf "valgrind error in the extension (%d time(s), process(es) %s):\n%s\n\n",
	  $e->{n}, join(',', @pids[0 .. ($#pids < 5 ? $#pids : 5)]), $e->{text};
}
printf "valgrind: %d distinct error(s) in the extension; %d record(s) in all over %d process(es)\n",
  scalar(@order), $records, $processes;
exit(@order ? 1 : 0);
