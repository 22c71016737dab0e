"""Settings, all read from the environment (see README "Settings").

With no DATABASE_URL the app uses a SQLite file, and with no REDIS_URL Celery uses kombu's
filesystem broker, so `make run` needs no server at all. Tests and production set both.
"""

import datetime
import ipaddress
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from deploycheck.logs import JSON_FORMATTER

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("DEPLOYCHECK_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
SECRET_KEY_FILE = VAR_DIR / "secret_key"
if not SECRET_KEY:
    # The key `make run` keeps in var/secret_key: a management command in a second terminal,
    # with nothing set, signs and decrypts with the same key as the running app.
    try:
        SECRET_KEY = SECRET_KEY_FILE.read_text().strip()
    except OSError:
        SECRET_KEY = ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (`make run` and `make test` do this for you; "
            f"`make run` also keeps one in {SECRET_KEY_FILE}, used when SECRET_KEY is unset)."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"
# Earlier SECRET_KEYs (comma-separated): secrets stored under them stay readable after a rotation.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "axes",
    "checklists",
]

MIDDLEWARE = [
    "deploycheck.logs.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "checklists.middleware.NulRefusalMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "checklists.middleware.HtmxLoginRedirectMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "checklists.middleware.RuleErrorMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "deploycheck.urls"
WSGI_APPLICATION = "deploycheck.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "deploycheck.sqlite3",
            # A threaded worker writes beside the web process: WAL and immediate transactions
            # turn "database is locked" into a short wait (TRAPS.md).
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# The image collects static files at build into a folder of their own, outside any volume.
STATIC_ROOT = Path(os.environ.get("DEPLOYCHECK_STATIC_ROOT", VAR_DIR / "staticfiles"))
# Self-hosted means one process serves its own static files, hashed and cached, no CDN.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and env_bool("DEPLOYCHECK_MANIFEST_STATIC", True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True
try:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:  # a read-only install serves from the finders alone
    pass

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Load balancers probe over plain HTTP.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    # Only behind a proxy that sets (and strips from clients) X-Forwarded-Proto.
    if env_bool("DEPLOYCHECK_BEHIND_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Every page's script and style come from this server's own files: no inline script, no
# style attribute, no eval (htmx's hx-on and indicator styles are off in base.html).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Login throttling (django-axes) ----------------------------------------------------------
# Both logins (/accounts/login/ and /admin/login/) go through authenticate(), which axes
# watches: after DEPLOYCHECK_LOGIN_FAILURES failures from one address, or for one user name,
# that address / user name waits DEPLOYCHECK_LOGIN_COOLOFF_MINUTES.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "checklists.backends.PermissionsInOneQueryBackend"]
# The default cache is this process's memory (nothing in deploycheck needs it shared). The
# run page's rendered item rows have a cache of their own, bounded, so that a launch with many
# pages open renders each changed row once per process rather than once per page (see
# templatetags/deploycheck.py). Process-local on purpose: no Redis round trip on a page, and a
# Redis outage leaves pages unaffected.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "deploycheck-default"},
    "fragments": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "deploycheck-fragments",
        "TIMEOUT": 600,
        "OPTIONS": {"MAX_ENTRIES": 20000, "CULL_FREQUENCY": 4},
    },
}

AXES_FAILURE_LIMIT = int(os.environ.get("DEPLOYCHECK_LOGIN_FAILURES", "5"))
AXES_COOLOFF_TIME = datetime.timedelta(minutes=int(os.environ.get("DEPLOYCHECK_LOGIN_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked.html"
# The client address: REMOTE_ADDR, or behind a proxy the address the proxy saw (read at
# request time, so the setting is the only switch).
DEPLOYCHECK_BEHIND_PROXY = env_bool("DEPLOYCHECK_BEHIND_PROXY", False)
AXES_CLIENT_IP_CALLABLE = "deploycheck.logs.client_ip"
AXES_VERBOSE = False

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    # kombu's filesystem transport crosses processes and needs no server (TRAPS.md).
    _broker_dir = VAR_DIR / "broker"
    for sub in ("out", "processed"):
        (_broker_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Its exchange tables too; by default kombu writes them to ./control wherever it runs.
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# One queue name per deployment sharing a Redis (and per test session: scripts/test.sh).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("DEPLOYCHECK_QUEUE", "celery")
# Checks spend their time waiting on the network: threads, not processes (TRAPS.md).
CELERY_WORKER_POOL = os.environ.get("DEPLOYCHECK_WORKER_POOL", "threads")
CELERY_WORKER_CONCURRENCY = int(os.environ.get("DEPLOYCHECK_WORKER_CONCURRENCY", "64"))
# A publish with the broker down must fail fast so the request can answer 503 (TRAPS.md).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE

# --- deploycheck ----------------------------------------------------------------------------
# Always denied, whatever the operator sets: cloud metadata endpoints.
BUILTIN_DENY_NETS = ("169.254.0.0/16", "fd00:ec2::/32")


def _parse_nets(values: list[str]) -> list:
    nets = []
    for value in values:
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"DEPLOYCHECK_CHECK_DENY_NETS: {value!r} is not a network ({exc})")
    return nets


DEPLOYCHECK_CHECK_DENY_NETS = [v.lower() if v.lower() == "private" else _parse_nets([v])[0] for v in [*BUILTIN_DENY_NETS, *env_list("DEPLOYCHECK_CHECK_DENY_NETS")]]  # "private": net.PRIVATE_NETS
DEPLOYCHECK_CHECK_ALLOW_NETS = env_list("DEPLOYCHECK_CHECK_ALLOW_NETS")  # CIDRs or host names; never lifts BUILTIN_DENY_NETS
DEPLOYCHECK_CHECK_TIMEOUT = float(os.environ.get("DEPLOYCHECK_CHECK_TIMEOUT", "10"))
DEPLOYCHECK_CA_BUNDLE = os.environ.get("DEPLOYCHECK_CA_BUNDLE", "")
# Resolvers for checks' name lookups (host[:port], comma-separated); empty: the system's.
DEPLOYCHECK_CHECK_NAMESERVERS = env_list("DEPLOYCHECK_CHECK_NAMESERVERS")
DEPLOYCHECK_S3_ENDPOINT_URL = os.environ.get("DEPLOYCHECK_S3_ENDPOINT_URL", "")
# Credentials for S3 backup checks that give none of their own; never the AWS_* environment,
# ~/.aws or an instance role.
DEPLOYCHECK_S3_ACCESS_KEY_ID = os.environ.get("DEPLOYCHECK_S3_ACCESS_KEY_ID", "")
DEPLOYCHECK_S3_SECRET_ACCESS_KEY = os.environ.get("DEPLOYCHECK_S3_SECRET_ACCESS_KEY", "")
DEPLOYCHECK_BACKUP_ROOTS = [
    os.path.realpath(p) for p in os.environ.get("DEPLOYCHECK_BACKUP_ROOTS", "").split(os.pathsep) if p.strip()
]

# One JSON object per line, from web and worker alike, with the request id, user and run
# where they apply (deploycheck.logs). LOG_FORMAT=text (the default with DEBUG, as under
# `make run`) for a terminal.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "deploycheck.logs.ContextFilter"}},
    "formatters": {
        "json": JSON_FORMATTER,
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "text" if os.environ.get("LOG_FORMAT", "text" if DEBUG else "json") == "text" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
# The worker logs through the same configuration instead of Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

CELERY_BEAT_SCHEDULE = {
    "verification-sweep": {"task": "checklists.tasks.verification_sweep", "schedule": 30.0},
}

# --- Release gate: the GitHub App and the outbox (README "Gate a release") --------------------
# Where people open deploycheck, for the run links in what it sends (GitHub's answers); unset,
# the address GitHub reached it at.
DEPLOYCHECK_BASE_URL = os.environ.get("DEPLOYCHECK_BASE_URL", "").rstrip("/")
# GitHub Enterprise Server: https://HOST/api/v3. deploycheck calls no URL outside it.
DEPLOYCHECK_GITHUB_API_URL = os.environ.get("DEPLOYCHECK_GITHUB_API_URL", "https://api.github.com").rstrip("/")
DEPLOYCHECK_GITHUB_APP_ID = os.environ.get("DEPLOYCHECK_GITHUB_APP_ID", "")
DEPLOYCHECK_GITHUB_PRIVATE_KEY = os.environ.get("DEPLOYCHECK_GITHUB_PRIVATE_KEY", "")  # the PEM, or a path to it
DEPLOYCHECK_GITHUB_WEBHOOK_SECRET = os.environ.get("DEPLOYCHECK_GITHUB_WEBHOOK_SECRET", "")
# A failed delivery waits this long, doubling each time (at most an hour), for at most this many attempts.
DEPLOYCHECK_OUTBOX_RETRY_SECONDS = float(os.environ.get("DEPLOYCHECK_OUTBOX_RETRY_SECONDS", "10"))
DEPLOYCHECK_OUTBOX_MAX_ATTEMPTS = int(os.environ.get("DEPLOYCHECK_OUTBOX_MAX_ATTEMPTS", "12"))
CELERY_BEAT_SCHEDULE["outbox-sweep"] = {"task": "checklists.tasks.outbox_sweep", "schedule": 30.0}

# --- Notifications (README "Notifications") -------------------------------------------------
# A webhook POST's total deadline (its address meets DEPLOYCHECK_CHECK_DENY_NETS / _ALLOW_NETS).
DEPLOYCHECK_NOTIFY_TIMEOUT = float(os.environ.get("DEPLOYCHECK_NOTIFY_TIMEOUT", "10"))
# Email receivers go out through Django's mail settings; the console backend unless a host is given.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "15"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "deploycheck@localhost")
