"""Players the daemon drives itself (`[player] backend`): `mpd.MpdPlayer`. The "web" backend is the page at `/`."""
