<?php
/**
 * Drives a real WordPress install from the command line, one action per run, for
 * tests/test_wordpress_plugin.py.
 *
 *     php driver.php SITE_DIR ACTION '{"json": "arguments"}'
 *
 * SITE_DIR holds the site's wp-config.php (written by site.py next to this file).
 * Each run is a fresh PHP process, like each web request to a real site: it
 * fills $_SERVER / $_POST / $_GET the way the web server would for the request
 * being imitated, boots WordPress through its wp-config.php, calls WordPress's
 * own functions (wp_install, activate_plugin, wp_handle_comment_submission,
 * wp_spam_comment...; the Akismet plugin reacts through its hooks), and prints
 * one line `@@RESULT@@ {json}`. A run that WordPress ends itself (the plugin's
 * discard path calls die() after a redirect; wp_die) prints
 * `{"exited": true, "output": ...}` from a shutdown function instead. E-mails the
 * site sends are recorded in SITE_DIR/mail.jsonl, never sent.
 *
 * The database actions (create-database, drop-database) run before WordPress
 * is loaded, with plain mysqli.
 */

$cg_site_dir = isset( $argv[1] ) ? $argv[1] : '';
$cg_action   = isset( $argv[2] ) ? $argv[2] : '';
$cg_args     = json_decode( isset( $argv[3] ) ? $argv[3] : '{}', true );
if ( ! is_dir( $cg_site_dir ) || '' === $cg_action || ! is_array( $cg_args ) ) {
	fwrite( STDERR, "usage: php driver.php SITE_DIR ACTION [JSON]\n" );
	exit( 2 );
}

$cg_finished = false;

/** Print the run's result on the line the Python side reads (anything else printed is kept as output). */
function cg_result( $value ) {
	global $cg_finished;
	$output      = ob_get_level() ? ob_get_clean() : '';
	$cg_finished = true;
	echo "@@RESULT@@ " . json_encode( array( 'result' => $value, 'output' => $output ), JSON_UNESCAPED_SLASHES ) . "\n";
}

register_shutdown_function(
	function () {
		global $cg_finished;
		if ( ! $cg_finished ) {
			// A fatal error, if that is what ended it (the last error may be a mere deprecation).
			$last  = error_get_last();
			$fatal = E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR;
			cg_result( array( 'exited' => true, 'error' => ( $last && ( $last['type'] & $fatal ) ) ? $last : null ) );
		}
	}
);
ob_start();

if ( 'create-database' === $cg_action || 'drop-database' === $cg_action ) {
	mysqli_report( MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT );
	$db   = new mysqli( $cg_args['host'], $cg_args['user'], $cg_args['password'], '', (int) $cg_args['port'] );
	$name = $db->real_escape_string( $cg_args['name'] );
	$sql  = 'create-database' === $cg_action
		? "CREATE DATABASE `$name` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
		: "DROP DATABASE IF EXISTS `$name`";
	$db->query( $sql );
	cg_result( array( 'ok' => true ) );
	exit( 0 );
}

// The request being imitated: a visitor's browser posting the comment form, unless the
// action says otherwise. Set before WordPress loads, as a web server would.
$cg_request   = isset( $cg_args['request'] ) ? $cg_args['request'] : array();
$_SERVER   = array_merge(
	array(
		'HTTP_HOST'       => parse_url( $cg_args['home'], PHP_URL_HOST ),
		'SERVER_NAME'     => parse_url( $cg_args['home'], PHP_URL_HOST ),
		'SERVER_PORT'     => '80',
		'REQUEST_METHOD'  => 'GET',
		'REQUEST_URI'     => '/',
		'SCRIPT_NAME'     => '/index.php',
		'PHP_SELF'        => '/index.php',
		'REMOTE_ADDR'     => '127.0.0.1',
	),
	isset( $cg_request['server'] ) ? $cg_request['server'] : array()
);
$_POST = isset( $cg_request['post'] ) ? $cg_request['post'] : array();
$_GET  = isset( $cg_request['get'] ) ? $cg_request['get'] : array();
$_REQUEST = array_merge( $_GET, $_POST );

if ( 'install' === $cg_action ) {
	define( 'WP_INSTALLING', true );
} elseif ( 'save-key' === $cg_action || 'connectivity' === $cg_action || 'admin-comment-text' === $cg_action ) {
	define( 'WP_ADMIN', true ); // a wp-admin request: the plugin loads its settings code then
}
require $cg_site_dir . '/wp-config.php';

// No e-mail leaves a test site: wp_mail() asks `pre_wp_mail` first (WordPress 5.7+), and each
// message is recorded, one JSON line in SITE_DIR/mail.jsonl (site.py's mails()), as sent.
add_filter(
	'pre_wp_mail',
	function ( $short_circuit, $atts ) use ( $cg_site_dir ) {
		$mail = array(
			'to'      => array_values( (array) $atts['to'] ),
			'subject' => (string) $atts['subject'],
			'message' => (string) $atts['message'],
		);
		file_put_contents( $cg_site_dir . '/mail.jsonl', json_encode( $mail, JSON_UNESCAPED_SLASHES ) . "\n", FILE_APPEND | LOCK_EX );
		return true;
	},
	10,
	2
);

/** Every comment meta row, values unserialized (akismet_history has one row per event). */
function cg_comment_state( $comment_id ) {
	$comment = get_comment( $comment_id );
	if ( ! $comment ) {
		return null;
	}
	return array(
		'comment_id' => (int) $comment->comment_ID,
		'approved'   => (string) $comment->comment_approved,
		'content'    => $comment->comment_content,
		'meta'       => array_map(
			function ( $values ) {
				return array_map( 'maybe_unserialize', $values );
			},
			get_comment_meta( $comment->comment_ID )
		),
	);
}

/** The site's administrator, as a logged-in moderator would be. */
function cg_log_in_admin() {
	$admin = get_user_by( 'login', 'admin' );
	wp_set_current_user( $admin->ID );
	return $admin;
}

switch ( $cg_action ) {
	case 'install':
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		require_once ABSPATH . 'wp-admin/includes/plugin.php';
		$installed = wp_install( 'CommentGuard test site', 'admin', 'admin@example.org', true, '', wp_generate_password( 24 ) );
		$activated = activate_plugin( 'akismet/akismet.php' );
		cg_result(
			array(
				'user_id'   => $installed['user_id'],
				'activated' => ! is_wp_error( $activated ) && null === $activated,
				'active'    => get_option( 'active_plugins' ),
				'home'      => get_option( 'home' ),
			)
		);
		break;

	case 'options':
		// Site settings, as Settings > Discussion and Settings > Akismet store them (null deletes).
		foreach ( $cg_args['options'] as $name => $value ) {
			if ( null === $value ) {
				delete_option( $name );
			} else {
				update_option( $name, $value );
			}
		}
		cg_result( array( 'ok' => true ) );
		break;

	case 'verify-key':
		// What Settings > Akismet does with a key typed in (Akismet_Admin::save_key -> verify_key).
		// With `ip`: the call pinned to one of Akismet's addresses, as the plugin's
		// connectivity check makes it (http://<ip>/1.1/verify-key, Host: rest.akismet.com).
		$ip  = isset( $cg_args['ip'] ) ? $cg_args['ip'] : null;
		$raw = Akismet::check_key_status( $cg_args['key'], $ip );
		cg_result(
			array(
				'verify_key' => Akismet::verify_key( $cg_args['key'], $ip ),
				'body'       => $raw[1],
				'headers'    => is_object( $raw[0] ) ? $raw[0]->getAll() : $raw[0],
			)
		);
		break;

	case 'save-key':
		// Settings > Akismet Anti-spam, a key typed in and saved (Akismet_Admin::enter_api_key
		// calls save_key once the form's nonce checks out), then the page's account box.
		cg_log_in_admin();
		Akismet_Admin::save_key( $cg_args['key'] );
		$notices = new ReflectionProperty( 'Akismet_Admin', 'notices' );
		$notices->setAccessible( true );
		$shown = $notices->getValue();
		cg_result(
			array(
				'saved_key' => get_option( 'wordpress_api_key' ),
				'notice'    => isset( $shown['status'] ) ? $shown['status'] : null,
				'account'   => Akismet_Admin::get_akismet_user( Akismet::get_api_key() ),
			)
		);
		break;

	case 'connectivity':
		// The settings page's network check (Akismet_Admin::display_status): false shows
		// "Your firewall may be blocking Akismet from connecting to its API".
		cg_result( array( 'connected' => Akismet_Admin::check_server_connectivity() ) );
		break;

	case 'mu-target':
		// The mu-plugin's URL mapping on its own: [url, host header, COMMENTGUARD_URL] each.
		cg_result(
			array_map(
				function ( $case ) {
					return commentguard_akismet_target( $case[0], $case[1], $case[2] );
				},
				$cg_args['cases']
			)
		);
		break;

	case 'plugin-state':
		require_once ABSPATH . 'wp-admin/includes/plugin.php';
		cg_result(
			array(
				'active'       => is_plugin_active( 'akismet/akismet.php' ),
				'mu_plugins'   => array_keys( get_mu_plugins() ),
				'akismet_init' => has_filter( 'preprocess_comment', array( 'Akismet', 'auto_check_comment' ) ) !== false,
				'redirect'     => has_filter( 'pre_http_request', 'commentguard_akismet_redirect' ) !== false,
			)
		);
		break;

	case 'comment':
		// What wp-comments-post.php does with the posted form ($_POST, set above), from a
		// visitor or (`as_admin`) from the logged-in administrator.
		if ( ! empty( $cg_args['as_admin'] ) ) {
			cg_log_in_admin();
		}
		$comment = wp_handle_comment_submission( wp_unslash( $_POST ) );
		if ( is_wp_error( $comment ) ) {
			cg_result( array( 'error' => $comment->get_error_code() ) );
		} else {
			cg_result( cg_comment_state( $comment->comment_ID ) );
		}
		break;

	case 'moderate':
		// A moderator following the Spam / Not Spam / Approve / Unapprove link under a comment in
		// wp-admin (comment.php?action=spamcomment|unspamcomment|approvecomment|unapprovecomment): the GET
		// action set above is what tells the plugin a person made the change.
		cg_log_in_admin();
		if ( 'approve' === $cg_args['to'] || 'hold' === $cg_args['to'] ) {
			$done = wp_set_comment_status( $cg_args['comment_id'], $cg_args['to'] );
		} elseif ( 'trash' === $cg_args['to'] || 'untrash' === $cg_args['to'] ) {
			$done = 'trash' === $cg_args['to'] ? wp_trash_comment( $cg_args['comment_id'] ) : wp_untrash_comment( $cg_args['comment_id'] );
		} elseif ( 'recheck' === $cg_args['to'] ) {
			// The "Check for Spam" button on the Pending list, for one comment.
			$done = Akismet::recheck_comment( $cg_args['comment_id'], 'recheck_queue' );
		} else {
			$done = 'spam' === $cg_args['to'] ? wp_spam_comment( $cg_args['comment_id'] ) : wp_unspam_comment( $cg_args['comment_id'] );
		}
		cg_result( array( 'changed' => (bool) $done, 'comment' => cg_comment_state( $cg_args['comment_id'] ) ) );
		break;

	case 'rest-comment':
		// A visitor's comment through the REST API (POST /wp/v2/comments), as a headless front
		// end or an app sends it; anonymous comments there are off unless a site turns them on.
		add_filter( 'rest_allow_anonymous_comments', '__return_true' );
		if ( ! empty( $cg_args['as_admin'] ) ) {
			cg_log_in_admin();
		}
		$request = new WP_REST_Request( 'POST', '/wp/v2/comments' );
		$request->set_body_params( $_POST );
		$response = rest_do_request( $request );
		$data     = $response->get_data();
		if ( $response->is_error() || empty( $data['id'] ) ) {
			cg_result( array( 'error' => $data, 'status' => $response->get_status() ) );
		} else {
			cg_result( cg_comment_state( $data['id'] ) );
		}
		break;

	case 'duplicate-then-insert':
		// A visitor's comment posted twice (WordPress refuses the second after its check), then
		// another plugin inserting a comment of its own in the same request.
		$first  = wp_handle_comment_submission( wp_unslash( $_POST ) );
		$second = wp_handle_comment_submission( wp_unslash( $_POST ) );
		$note   = wp_insert_comment( array( 'comment_post_ID' => 1, 'comment_content' => 'An order note.', 'comment_type' => 'order_note', 'comment_approved' => 0 ) );
		cg_result(
			array(
				'first'  => is_wp_error( $first ) ? $first->get_error_code() : cg_comment_state( $first->comment_ID ),
				'second' => is_wp_error( $second ) ? $second->get_error_code() : 'accepted',
				'note'   => cg_comment_state( $note ),
			)
		);
		break;

	case 'delete-comment-meta':
		cg_result( delete_comment_meta( $cg_args['comment_id'], $cg_args['key'] ) );
		break;

	case 'comment-text':
	case 'admin-comment-text':
		// A comment's text as a page shows it: to a visitor on the post, or to the logged-in
		// administrator in wp-admin's comment list.
		if ( 'admin-comment-text' === $cg_action ) {
			cg_log_in_admin();
		}
		$comment = get_comment( $cg_args['comment_id'] );
		cg_result( apply_filters( 'comment_text', get_comment_text( $comment ), $comment, array() ) );
		break;

	case 'comment-state':
		cg_result( cg_comment_state( $cg_args['comment_id'] ) );
		break;

	case 'find-comments':
		// Comments holding a text, whatever their status (a discarded one is in none).
		global $wpdb;
		$ids = $wpdb->get_col( $wpdb->prepare( "SELECT comment_ID FROM {$wpdb->comments} WHERE comment_content = %s", $cg_args['content'] ) );
		cg_result( array_map( 'intval', $ids ) );
		break;

	case 'cron':
		// The plugin's scheduled events (the recheck queue).
		cg_result(
			array(
				'recheck' => wp_next_scheduled( 'akismet_schedule_cron_recheck' ),
				'delete'  => wp_next_scheduled( 'akismet_scheduled_delete' ),
				'now'     => time(),
			)
		);
		break;

	case 'recheck':
		// What WP-Cron runs when the recheck event falls due.
		Akismet::cron_recheck();
		cg_result( array( 'ok' => true ) );
		break;

	default:
		cg_result( array( 'error' => "unknown action $cg_action" ) );
}
