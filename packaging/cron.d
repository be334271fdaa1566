# /etc/cron.d/notebook-gateway: renewal where systemd does not run (containers); with systemd,
# notebook-gateway-renew.timer does it (and can bind :80 while serve is stopped; cron cannot).
17 3,15 * * *  gateway  test -d /run/systemd/system || (sleep $(shuf -i 0-3000 -n 1); /usr/bin/gateway renew --config /etc/gateway/gateway.yaml --quiet)
