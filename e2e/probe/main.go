// Command probe is the program in the e2e test image (samsa.local/e2e/probe): a tiny TCP
// server that names the pod it runs in, and the client-side tools the smoke test runs in pods
// with `kubectl exec`. It uses only the standard library; with CGO_ENABLED=0 it is static and
// resolves names with Go's own resolver, which honours the pod's /etc/resolv.conf (search
// domains, ndots) like any other client.
//
//	probe serve [-addr :8080]          reply "<hostname> <line>" to each line a client sends
//	probe dial [-n N] [-timeout D] ADDR MSG
//	                                   N connections to ADDR, each sends MSG and prints the reply
//	probe lookup NAME                  print NAME's addresses, one a line
//	probe get URL                      GET URL (TLS not verified: a reachability check) and
//	                                   print the status line and the body
//	probe write FILE CONTENT           write CONTENT to FILE and fsync it
//	probe cat FILE                     print FILE
//	probe version
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"
)

const version = "samsa-e2e-probe 1"

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "dial":
		err = dial(args)
	case "lookup":
		err = lookup(args)
	case "get":
		err = get(args)
	case "write":
		err = write(args)
	case "cat":
		err = cat(args)
	case "version", "-v", "--version":
		fmt.Println(version)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: probe {serve [-addr :8080] | dial [-n N] [-timeout D] ADDR MSG | lookup NAME | get URL | write FILE CONTENT | cat FILE | version}")
	os.Exit(2)
}

// serve answers each line a client sends with "<hostname> <line>", one connection at a time
// per goroutine, until SIGTERM or SIGINT.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", ":8080", "listen address")
	_ = fs.Parse(args)
	host, err := os.Hostname()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %s listening on %s\n", version, host, ln.Addr())

	// Without a handler, SIGTERM is ignored by PID 1 and the pod waits out its grace period.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-sigs
		fmt.Printf("%s: exiting on %v\n", host, s)
		os.Exit(0)
	}()

	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go handle(conn, host)
	}
}

func handle(conn net.Conn, host string) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			fmt.Printf("%s: %s said %q\n", host, conn.RemoteAddr(), line)
			if _, werr := fmt.Fprintf(conn, "%s %s\n", host, line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// dial opens n connections to addr, one after the other; each sends msg and prints the reply
// line. It fails if any connection fails, after trying all of them.
func dial(args []string) error {
	fs := flag.NewFlagSet("dial", flag.ExitOnError)
	n := fs.Int("n", 1, "number of connections")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each connection")
	_ = fs.Parse(args)
	if fs.NArg() != 2 {
		usage()
	}
	addr, msg := fs.Arg(0), fs.Arg(1)
	failures := 0
	for i := 0; i < *n; i++ {
		reply, err := dialOnce(addr, msg, *timeout)
		if err != nil {
			failures++
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Println(reply)
	}
	if failures > 0 {
		return fmt.Errorf("%d of %d connections to %s failed", failures, *n, addr)
	}
	return nil
}

func dialOnce(addr, msg string, timeout time.Duration) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintf(conn, "%s\n", msg); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the reply from %s: %w", addr, err)
	}
	return strings.TrimRight(reply, "\r\n"), nil
}

func lookup(args []string) error {
	if len(args) != 1 {
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, args[0])
	if err != nil {
		return err
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		fmt.Println(a)
	}
	return nil
}

// get fetches url without verifying its TLS certificate (the test image carries no CA bundle and
// only checks that a server answers) and prints "HTTP <status>" and the body.
func get(args []string) error {
	if len(args) != 1 {
		usage()
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	resp, err := client.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	fmt.Printf("HTTP %d\n%s\n", resp.StatusCode, body)
	return nil
}

func write(args []string) error {
	if len(args) != 2 {
		usage()
	}
	f, err := os.Create(args[0])
	if err != nil {
		return err
	}
	if _, err := f.WriteString(args[1] + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func cat(args []string) error {
	if len(args) != 1 {
		usage()
	}
	b, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(b)
	return err
}
