# Shared by the scripts in scripts/: waiting for a throwaway server.

# listening_address LOG [TRIES]: prints the address a `switchboard serve
# --listen 127.0.0.1:0` reports in LOG once it listens; fails after TRIES
# tenths of a second (default 100).
listening_address() {
    local log=$1 tries=${2:-100} address
    for _ in $(seq "$tries"); do
        address=$(grep -o 'listening on 127\.0\.0\.1:[0-9]*' "$log" 2>/dev/null | head -1 | sed 's/listening on //') || true
        if [[ -n $address ]]; then
            echo "$address"
            return 0
        fi
        sleep 0.1
    done
    return 1
}
