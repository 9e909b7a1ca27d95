# Helpers shared by the benchmark scripts; source it: `. "$(dirname "$0")/lib.sh"`.

# static_nginx WORKDIR ROOT: serve ROOT with nginx (one worker, sendfile, no access log)
# on a free loopback port until the calling script exits. Sets NGINX_PORT and NGINX_PID.
static_nginx() {
    local work=$1 root=$2
    mkdir -p "$work"
    NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$work/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1;
error_log $work/nginx-error.log warn; pid $work/nginx.pid;
events { worker_connections 256; }
http {
    access_log off; sendfile on;
    client_body_temp_path $work/cb; proxy_temp_path $work/px; fastcgi_temp_path $work/fc;
    uwsgi_temp_path $work/uw; scgi_temp_path $work/sc;
    server { listen 127.0.0.1:$NGINX_PORT; root $root; }
}
CONF
    nginx -p "$work" -c "$work/nginx.conf" &
    NGINX_PID=$!
    trap 'kill $NGINX_PID 2>/dev/null || true' EXIT
    local _
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nginx did not start: see $work/nginx-error.log" >&2
    return 1
}
