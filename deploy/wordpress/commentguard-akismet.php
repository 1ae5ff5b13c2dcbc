<?php
/**
 * Plugin Name: CommentGuard for Akismet
 * Description: Sends the Akismet plugin's API calls to a self-hosted CommentGuard server instead of rest.akismet.com.
 * Version: 1.0.0
 * License: MIT
 *
 * A must-use plugin: copy this file into wp-content/mu-plugins/ (create the
 * folder if it is missing) and name the server in wp-config.php, above the
 * "That's all, stop editing!" line:
 *
 *     define( 'COMMENTGUARD_URL', 'https://commentguard.example.org' );
 *
 * Then enter a key made with `commentguard keys create --site <your site>` in
 * Settings > Akismet Anti-spam (or define WPCOM_API_KEY). The Akismet plugin
 * itself stays unchanged.
 *
 * How: the plugin's host is a constant (rest.akismet.com), so this file hooks
 * WordPress core's `pre_http_request` filter. A request for
 * `http(s)://rest.akismet.com/<path>` or `http(s)://<label>.rest.akismet.com/<path>`,
 * or one the plugin pins to an address of Akismet's (`http://<ip>/<path>` with the
 * header `Host: rest.akismet.com`, its connectivity check),
 * is sent to `COMMENTGUARD_URL/<path>` with the plugin's own method, body,
 * headers and timeout, and its answer handed back to the plugin as if Akismet
 * had given it. Only the `Host` header changes (see below). Every other request
 * passes untouched. Without COMMENTGUARD_URL this file does nothing, so the
 * plugin keeps talking to Akismet.
 */

if ( ! defined( 'ABSPATH' ) ) {
	exit;
}

add_filter( 'pre_http_request', 'commentguard_akismet_redirect', 10, 3 );

/**
 * The CommentGuard answer for a request meant for Akismet; `$preempt` for any other request.
 *
 * @param false|array|WP_Error $preempt What an earlier filter decided (false: nothing yet).
 * @param array                $args    The request's arguments (method, body, headers, timeout...).
 * @param string               $url     Where the caller meant to send it.
 * @return false|array|WP_Error
 */
function commentguard_akismet_redirect( $preempt, $args, $url ) {
	if ( false !== $preempt || ! defined( 'COMMENTGUARD_URL' ) || '' === (string) COMMENTGUARD_URL ) {
		return $preempt;
	}
	$headers     = isset( $args['headers'] ) ? (array) $args['headers'] : array();
	$host_header = '';
	foreach ( array_keys( $headers ) as $name ) {
		if ( 'host' === strtolower( (string) $name ) ) {
			$host_header = (string) $headers[ $name ];
			unset( $headers[ $name ] );
		}
	}
	$target = commentguard_akismet_target( $url, $host_header, (string) COMMENTGUARD_URL );
	if ( null === $target ) {
		return $preempt;
	}
	// A server reached through a name-based reverse proxy (or TLS) must be asked for by its own
	// name: the plugin sets `Host: rest.akismet.com`, which would route to the wrong site there.
	// A key carried as the first label of the old `<key>.rest.akismet.com` host is kept in
	// front of the server's name, where CommentGuard also looks for it.
	if ( '' !== $target['label'] ) {
		$headers['Host'] = $target['label'] . '.' . $target['host'];
	}
	$args['headers'] = $headers;
	return wp_remote_request( $target['url'], $args );
}

/**
 * Where an Akismet URL goes on the CommentGuard server, or null for a URL that is not Akismet's.
 *
 * @param string $url         The URL the plugin asked for.
 * @param string $host_header The request's `Host` header, if it set one ('' otherwise).
 * @param string $base        COMMENTGUARD_URL, e.g. `https://commentguard.example.org` (a path prefix is kept).
 * @return array|null `url` (the new URL), `host` (the server's host[:port]) and `label` (a host key, or '').
 */
function commentguard_akismet_target( $url, $host_header, $base ) {
	$from = wp_parse_url( $url );
	$to   = wp_parse_url( $base );
	if ( empty( $from['host'] ) || empty( $to['host'] ) ) {
		return null;
	}
	$host = strtolower( $from['host'] );
	// A call pinned to one of Akismet's addresses names Akismet in its Host header only.
	if ( filter_var( trim( $host, '[]' ), FILTER_VALIDATE_IP ) && '' !== $host_header ) {
		$host = strtolower( preg_replace( '/:\d+$/', '', trim( $host_header ) ) );
	}
	if ( 'rest.akismet.com' === $host ) {
		$label = '';
	} elseif ( preg_match( '/^([a-z0-9-]+)\.rest\.akismet\.com$/', $host, $match ) ) {
		$label = $match[1];
	} else {
		return null;
	}
	// The server's own name must not be Akismet's: the request would come back here forever.
	if ( preg_match( '/(^|\.)rest\.akismet\.com$/', strtolower( $to['host'] ) ) ) {
		return null;
	}
	$server = $to['host'] . ( isset( $to['port'] ) ? ':' . $to['port'] : '' );
	$prefix = isset( $to['path'] ) ? untrailingslashit( $to['path'] ) : '';
	$path   = isset( $from['path'] ) ? $from['path'] : '/';
	$query  = isset( $from['query'] ) ? '?' . $from['query'] : '';
	$scheme = isset( $to['scheme'] ) ? strtolower( $to['scheme'] ) : 'https';
	return array(
		'url'   => $scheme . '://' . $server . $prefix . $path . $query,
		'host'  => $server,
		'label' => $label,
	);
}
