# CatalogTest.pm: the set-up the Perl TAP tests of test/t share.
#
# catalog_node(NAME, INIT_OPTIONS...): a PostgreSQL::Test::Cluster,
# initialised with the options given and test/catalog.conf appended to its
# postgresql.conf (the library preloaded, as every throw-away server of
# the suite); not started.  repo_root(): the checkout the tests run from.
package CatalogTest;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;

our @EXPORT_OK = qw(catalog_node repo_root);

sub repo_root
{
	return File::Spec->rel2abs(File::Spec->catdir(dirname(__FILE__), '..', '..'));
}

sub catalog_node
{
	my ($name, @init) = @_;
	my $conf = repo_root() . '/test/catalog.conf';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(@init);
	open(my $fh, '<', $conf) or die "cannot read $conf: $!";
	my $text = do { local $/; <$fh> };
	close($fh);
	$node->append_conf('postgresql.conf', $text);
	return $node;
}

1;
