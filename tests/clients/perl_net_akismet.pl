#!/usr/bin/perl
# Drives Debian's libnet-akismet-perl (Net::Akismet) against a server (arguments and output: README.md).
#
# Net::Akismet takes the server's host (and port) as SERVICE_HOST and puts the key only in
# the host name, <key>.SERVICE_HOST, for every call but verify-key. A site gives its server a
# wildcard DNS record; here SERVICE_HOST is localhost:PORT and names under .localhost are
# resolved to 127.0.0.1 (where the test server listens), as RFC 6761 (section 6.3) allows,
# through LWP's own hook for the socket options of its http connections (glibc's resolver
# does not know them).
use strict;
use warnings;
use JSON::PP;
use URI;
use LWP::Protocol::http;
use Net::Akismet;

package LocalhostHTTP {
    our @ISA = ('LWP::Protocol::http');
    @LocalhostHTTP::Socket::ISA = ('LWP::Protocol::http::Socket');

    sub _extra_sock_opts {
        my ($self, $host, $port) = @_;
        my @opts = $self->SUPER::_extra_sock_opts($host, $port);
        push @opts, (PeerAddr => '127.0.0.1') if $host =~ /(?:\A|\.)localhost\z/i;
        return @opts;
    }
}
LWP::Protocol::implementor(http => 'LocalhostHTTP');

my ($server_url, $api_key, $blog_url, $action, $comment_json) = @ARGV;
my $fields = decode_json($comment_json // '{}');
my $server = URI->new($server_url);

# Akismet field names to the client's argument names; it has no place for any other field.
my %ARGS = (
    user_ip => 'USER_IP', user_agent => 'COMMENT_USER_AGENT', referrer => 'REFERRER', permalink => 'PERMALINK',
    comment_type => 'COMMENT_TYPE', comment_author => 'COMMENT_AUTHOR',
    comment_author_email => 'COMMENT_AUTHOR_EMAIL', comment_author_url => 'COMMENT_AUTHOR_URL',
    comment_content => 'COMMENT_CONTENT',
);
my (%args, @unsent);
for my $name (sort keys %$fields) {
    if (exists $ARGS{$name}) { $args{$ARGS{$name}} = $fields->{$name} } else { push @unsent, $name }
}

my $json = JSON::PP->new->canonical;
my %answer = (ok => JSON::PP::true, unsent => \@unsent);
# new() verifies the key and returns undef when that fails, for whatever reason.
my $client = Net::Akismet->new(KEY => $api_key, URL => $blog_url, SERVICE_HOST => 'localhost:' . $server->port);
if ($action eq 'verify-key') {
    @answer{qw(result raw)} = (defined $client ? JSON::PP::true : JSON::PP::false, defined $client ? 1 : undef);
} elsif (!defined $client) {
    @answer{qw(ok error_type error)} = (JSON::PP::false, 'undef', 'Net::Akismet->new returned undef');
} elsif ($action eq 'comment-check') {
    my $raw = $client->check(%args);  # 'true', 'false', or undef on any error
    $answer{raw} = $raw;
    $answer{result} = !defined $raw ? undef : $raw eq 'true' ? 'spam' : 'ham';
} elsif ($action eq 'submit-spam' || $action eq 'submit-ham') {
    my $raw = $action eq 'submit-spam' ? $client->spam(%args) : $client->ham(%args);
    $answer{raw} = $raw;
    $answer{result} = $raw ? JSON::PP::true : JSON::PP::false;
    $answer{body} = $client->{response};  # the client keeps the last body here and ignores it
} else {
    die "unknown action $action\n";
}
print $json->encode(\%answer), "\n";
