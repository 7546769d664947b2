# Sourced by the bench scripts that load an nginx on loopback (replay.sh,
# rss.sh, h2.sh): one worker answering `200 ok` with keep-alive for as long
# as a run lasts, logging nothing. The caller sets $work (a directory of
# its own) and $PORT, and kills "$nginx_pid" on exit.

nginx_pid=""

# start_nginx AFFINITY [LISTEN] [SERVER]: (re)start nginx with its one
# worker pinned by AFFINITY (a worker_cpu_affinity mask, 10 for CPU 1) or
# anywhere (off); LISTEN is added to the listen directive (e.g. "ssl
# http2"), SERVER to the server block (certificates, stream limits).
start_nginx() {
	if [ -n "$nginx_pid" ]; then
		kill "$nginx_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
		rm -f "$work/nginx.pid"
	fi
	local affinity=""
	[ "$1" = off ] || affinity="worker_cpu_affinity $1;"
	cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
$affinity
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 65536; }
worker_rlimit_nofile 200000;
http {
	access_log off;
	keepalive_requests 1000000;
	keepalive_timeout 120s;
	server {
		listen 127.0.0.1:$PORT ${2:-} backlog=65535 reuseport;
		${3:-}
		location / { return 200 "ok"; }
	}
}
NGINX
	nginx -c "$work/nginx.conf" -p "$work"
	for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
	nginx_pid=$(cat "$work/nginx.pid")
}
