package main

import (
	"net"
	"net/http"
)

// listenAndServe serves srv on addr (loopback, chosen by FreeAddr).
func listenAndServe(srv *http.Server, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return srv.Serve(ln)
}
