package main

// The client's security settings, from the environment, for every mode: what a pod sets from a
// KafkaUser's Secret (env valueFrom.secretKeyRef, or the Secret mounted as files).
//
//	KCLIENT_SECURITY_PROTOCOL  PLAINTEXT (default), SSL, SASL_SSL or SASL_PLAINTEXT
//	KCLIENT_SASL_MECHANISM     SCRAM-SHA-512 (default with SASL), SCRAM-SHA-256 or PLAIN
//	KCLIENT_SASL_USERNAME      the SASL user name
//	KCLIENT_SASL_PASSWORD      its password (or KCLIENT_SASL_PASSWORD_FILE: a file holding it)
//	KCLIENT_TLS_CA             PEM file of the CA(s) to trust (default: the system's)
//	KCLIENT_TLS_CERT           PEM file of the client certificate (mutual TLS), with
//	KCLIENT_TLS_KEY            PEM file of its key

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// securityOpts returns the client options the KCLIENT_* environment asks for (none for
// PLAINTEXT), or a clear error for a bad setting.
func securityOpts() ([]kgo.Opt, error) {
	protocol := strings.ToUpper(strings.TrimSpace(os.Getenv("KCLIENT_SECURITY_PROTOCOL")))
	if protocol == "" {
		protocol = "PLAINTEXT"
	}
	var useTLS, useSASL bool
	switch protocol {
	case "PLAINTEXT":
	case "SSL":
		useTLS = true
	case "SASL_SSL":
		useTLS, useSASL = true, true
	case "SASL_PLAINTEXT":
		useSASL = true
	default:
		return nil, fmt.Errorf("KCLIENT_SECURITY_PROTOCOL=%s: want PLAINTEXT, SSL, SASL_SSL or SASL_PLAINTEXT", protocol)
	}
	var opts []kgo.Opt
	if useTLS {
		cfg, err := tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	} else if os.Getenv("KCLIENT_TLS_CA") != "" || os.Getenv("KCLIENT_TLS_CERT") != "" {
		return nil, fmt.Errorf("KCLIENT_TLS_* set but KCLIENT_SECURITY_PROTOCOL=%s has no TLS", protocol)
	}
	if useSASL {
		m, err := saslMechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := os.Getenv("KCLIENT_TLS_CA"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("KCLIENT_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("KCLIENT_TLS_CA=%s: no PEM certificate in it", ca)
		}
		cfg.RootCAs = pool
	}
	cert, key := os.Getenv("KCLIENT_TLS_CERT"), os.Getenv("KCLIENT_TLS_KEY")
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("KCLIENT_TLS_CERT/KCLIENT_TLS_KEY: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	case cert != "" || key != "":
		return nil, errors.New("KCLIENT_TLS_CERT and KCLIENT_TLS_KEY go together")
	}
	return cfg, nil
}

func saslMechanism() (sasl.Mechanism, error) {
	user := os.Getenv("KCLIENT_SASL_USERNAME")
	pass := os.Getenv("KCLIENT_SASL_PASSWORD")
	if f := os.Getenv("KCLIENT_SASL_PASSWORD_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("KCLIENT_SASL_PASSWORD_FILE: %w", err)
		}
		pass = strings.TrimRight(string(b), "\r\n")
	}
	if user == "" || pass == "" {
		return nil, errors.New("SASL needs KCLIENT_SASL_USERNAME and KCLIENT_SASL_PASSWORD (or KCLIENT_SASL_PASSWORD_FILE)")
	}
	mech := strings.ToUpper(strings.TrimSpace(os.Getenv("KCLIENT_SASL_MECHANISM")))
	switch mech {
	case "", "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	default:
		return nil, fmt.Errorf("KCLIENT_SASL_MECHANISM=%s: want SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN", mech)
	}
}
