"""A throwaway WordPress site with the real Akismet plugin, driven from PHP CLI (driver.php).

Owns what a test needs to stand a site up and talk to it: finding the software
(``php`` with mysqli, WordPress, MariaDB), a site directory of its own
(``wp-config.php`` written by :func:`write_config`, a ``wp-content`` whose
``plugins`` is the installed WordPress's and whose ``mu-plugins`` holds
``deploy/wordpress/commentguard-akismet.php``, the file a site owner drops in),
its own MariaDB database and table prefix (created, then dropped), and
:meth:`WordPressSite.run`, one driver action per PHP process.

WordPress's code is used where it is installed (``COMMENTGUARD_WORDPRESS_DIR``,
default ``/usr/share/wordpress``): a ``wp-config.php`` may name any ``ABSPATH``,
``WP_CONTENT_DIR`` and plugin folders, as Debian's own one does, so nothing is
copied. The config blocks every outgoing HTTP request but those to 127.0.0.1
(``WP_HTTP_BLOCK_EXTERNAL``): if the redirect failed, the plugin would get an
error, never the real Akismet. No e-mail leaves the site either: the driver records each one
(:meth:`WordPressSite.mails`).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DRIVER = HERE / "driver.php"
MU_PLUGIN = REPO / "deploy" / "wordpress" / "commentguard-akismet.php"
WORDPRESS_DIR_ENV = "COMMENTGUARD_WORDPRESS_DIR"
MARIADB_ENV = "COMMENTGUARD_TEST_MARIADB"
HOME = "http://blog.wordpress.test"
RESULT_MARK = "@@RESULT@@ "


class MissingSoftware(RuntimeError):
    """php, its mysqli module, WordPress or its Akismet plugin is not installed."""


@dataclass(frozen=True)
class Database:
    """Where the site's MariaDB database lives."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: str = ""
    name: str = field(default_factory=lambda: f"cg_wp_{secrets.token_hex(4)}")

    @classmethod
    def from_env(cls) -> "Database":
        """The server ``COMMENTGUARD_TEST_MARIADB`` names (``mysql://user:password@host:port``), else root on 127.0.0.1:3306."""
        url = urlsplit(os.environ.get(MARIADB_ENV) or "mysql://root@127.0.0.1:3306")
        return cls(host=url.hostname or "127.0.0.1", port=url.port or 3306, user=unquote(url.username or "root"),
                   password=unquote(url.password or ""))

    def as_args(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password,
                "name": self.name}


def wordpress_dir() -> Path:
    """The installed WordPress, checked for the pieces the tests use; :class:`MissingSoftware` if absent."""
    root = Path(os.environ.get(WORDPRESS_DIR_ENV) or "/usr/share/wordpress")
    for needed in ("wp-settings.php", "wp-admin/includes/upgrade.php",
                   "wp-content/plugins/akismet/class.akismet.php"):
        if not (root / needed).is_file():
            raise MissingSoftware(f"{root / needed} is missing: install the wordpress package "
                                  f"or set {WORDPRESS_DIR_ENV}")
    return root


def php_binary() -> str:
    """``php`` with the mysqli module; :class:`MissingSoftware` otherwise."""
    php = shutil.which("php")
    if php is None:
        raise MissingSoftware("php is not on PATH: install php-cli and php-mysql")
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, check=True).stdout.split()
    if "mysqli" not in modules:
        raise MissingSoftware("php has no mysqli module: install php-mysql")
    return php


def php_string(value: str) -> str:
    """A PHP single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def php_literal(value: Union[bool, int]) -> str:
    """A PHP boolean or integer literal."""
    return ("true" if value else "false") if isinstance(value, bool) else str(int(value))


def write_config(site_dir: Path, wordpress: Path, db: Database, prefix: str,
                 commentguard_url: Optional[str], constants: Optional[dict[str, Union[bool, int]]] = None) -> Path:
    """The site's ``wp-config.php``: WordPress's usual constants, and ``COMMENTGUARD_URL`` (and
    any other ``constants``, such as ``COMMENTGUARD_HOLD_UNSURE``) as a site owner sets them."""
    salts = "\n".join(f"define( {php_string(name)}, {php_string(secrets.token_hex(32))} );" for name in (
        "AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
        "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"))
    url = "" if commentguard_url is None else f"define( 'COMMENTGUARD_URL', {php_string(commentguard_url)} );\n"
    url += "".join(f"define( {php_string(name)}, {php_literal(value)} );\n" for name, value in (constants or {}).items())
    text = f"""<?php
/** A throwaway test site (tests/clients/wordpress/site.py writes it). */
define( 'DB_NAME', {php_string(db.name)} );
define( 'DB_USER', {php_string(db.user)} );
define( 'DB_PASSWORD', {php_string(db.password)} );
define( 'DB_HOST', {php_string(f"{db.host}:{db.port}")} );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
{salts}
$table_prefix = {php_string(prefix)};

define( 'WP_HOME', {php_string(HOME)} );
define( 'WP_SITEURL', {php_string(HOME)} );
define( 'WP_CONTENT_DIR', {php_string(str(site_dir / "wp-content"))} );
define( 'WP_PLUGIN_DIR', {php_string(str(wordpress / "wp-content" / "plugins"))} );
define( 'WPMU_PLUGIN_DIR', {php_string(str(site_dir / "wp-content" / "mu-plugins"))} );
// No internet: only 127.0.0.1 (the CommentGuard server) may be reached; WP-Cron runs when a test says.
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'WP_ACCESSIBLE_HOSTS', '127.0.0.1' );
define( 'DISABLE_WP_CRON', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
// Warnings and notices go to a log the tests read (PHP 8.2 deprecations in core included).
define( 'WP_DEBUG', true );
define( 'WP_DEBUG_DISPLAY', false );
define( 'WP_DEBUG_LOG', {php_string(str(site_dir / "debug.log"))} );

{url}
if ( ! defined( 'ABSPATH' ) ) {{
	define( 'ABSPATH', {php_string(str(wordpress) + "/")} );
}}
require_once ABSPATH . 'wp-settings.php';
"""
    path = site_dir / "wp-config.php"
    path.write_text(text, encoding="utf-8")
    return path


class WordPressSite:
    """One site: its directory, database and table prefix, driven through driver.php."""

    def __init__(self, site_dir: Path, db: Optional[Database] = None) -> None:
        self.php = php_binary()
        self.wordpress = wordpress_dir()
        self.dir = site_dir
        self.db = db or Database.from_env()
        self.prefix = f"wp{secrets.token_hex(3)}_"
        self.commentguard_url: Optional[str] = None
        self.last_output = ""
        mu_plugins = site_dir / "wp-content" / "mu-plugins"
        mu_plugins.mkdir(parents=True, exist_ok=True)
        # The very file a site owner copies (a symlink: a change to it is what gets tested).
        (mu_plugins / MU_PLUGIN.name).symlink_to(MU_PLUGIN)

    def point_at(self, url: Optional[str], **constants: Union[bool, int]) -> None:
        """Write ``wp-config.php`` with ``COMMENTGUARD_URL`` set to ``url`` (None: not defined),
        and the ``constants`` given (``COMMENTGUARD_HOLD_UNSURE=False``, ``EMPTY_TRASH_DAYS=0``)."""
        self.commentguard_url = url
        write_config(self.dir, self.wordpress, self.db, self.prefix, url, constants)

    def create(self) -> dict[str, Any]:
        """Create the database, install WordPress with ``wp_install()`` and activate Akismet."""
        self.run("create-database", **self.db.as_args())
        return self.run("install")

    def drop(self) -> None:
        self.run("drop-database", **self.db.as_args())

    def run(self, action: str, *, request: Optional[dict[str, Any]] = None, timeout: float = 120,
            **args: Any) -> Any:
        """One driver action in a fresh PHP process; its JSON result (``{"exited": true}`` if WordPress ended it)."""
        payload = {"home": HOME, "request": request or {}, **args}
        # A clean environment: PHP CLI copies it into $_SERVER, and the plugin forwards every HTTP_* there.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        proc = subprocess.run([self.php, str(DRIVER), str(self.dir), action, json.dumps(payload)],
                              capture_output=True, text=True, timeout=timeout, env=env)
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_MARK):
                outcome = json.loads(line[len(RESULT_MARK):])
                self.last_output = outcome["output"]
                return outcome["result"]
        raise RuntimeError(f"driver {action} printed no result (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")

    def mails(self) -> list[dict[str, Any]]:
        """Every e-mail the site sent (``to``, ``subject``, ``message``), oldest first; the driver
        records them instead of sending them."""
        path = self.dir / "mail.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def debug_log(self) -> str:
        """What PHP logged (warnings, notices) while the site ran."""
        path = self.dir / "debug.log"
        return path.read_text(errors="replace") if path.exists() else ""
