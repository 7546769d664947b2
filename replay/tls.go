package replay

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLSOptions are the TLS settings real staging targets need: a private
// CA, a client certificate (mTLS), a verification name for a target given
// by IP address, a protocol floor.
type TLSOptions struct {
	// CACert is a PEM bundle added to the system's roots.
	CACert string
	// ClientCert and ClientKey are PEM files of a client certificate and
	// its key, presented when the target asks (mTLS).
	ClientCert, ClientKey string
	// ServerName is sent as SNI and verified against the certificate
	// instead of the target's host: for a target given by IP address.
	ServerName string
	// MinVersion is the oldest TLS version accepted: 1.0, 1.1, 1.2 or 1.3.
	MinVersion string
	// Insecure skips certificate verification.
	Insecure bool
}

// Config builds the TLS configuration: files read once, and one session
// cache for every connection of the run, so that reconnects resume their
// sessions as real clients do. NextProtos is left to each connection.
func (o TLSOptions) Config() (*tls.Config, error) {
	c := &tls.Config{
		ServerName:         o.ServerName,
		InsecureSkipVerify: o.Insecure,
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	if o.CACert != "" {
		pem, err := os.ReadFile(o.CACert)
		if err != nil {
			return nil, fmt.Errorf("CA certificates: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificates %q: no PEM certificate in the file", o.CACert)
		}
		c.RootCAs = pool
	}
	switch {
	case o.ClientCert != "" && o.ClientKey != "":
		cert, err := tls.LoadX509KeyPair(o.ClientCert, o.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case o.ClientCert != "" || o.ClientKey != "":
		return nil, errors.New("a client certificate needs both its certificate and its key")
	}
	if o.MinVersion != "" {
		v, err := ParseTLSVersion(o.MinVersion)
		if err != nil {
			return nil, err
		}
		c.MinVersion = v
	}
	return c, nil
}

// ParseTLSVersion parses 1.0, 1.1, 1.2 or 1.3 (with or without "TLS").
func ParseTLSVersion(s string) (uint16, error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "tls") {
	case "1.0", "10":
		return tls.VersionTLS10, nil
	case "1.1", "11":
		return tls.VersionTLS11, nil
	case "1.2", "12":
		return tls.VersionTLS12, nil
	case "1.3", "13":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q: use 1.0, 1.1, 1.2 or 1.3", s)
}

// Protocol is what a replay speaks to the target.
type Protocol int

const (
	// ProtoH1: HTTP/1.1 for everything, HTTP/2 recordings included. The
	// zero value: a library caller gets what herd always sent.
	ProtoH1 Protocol = iota
	// ProtoAuto (the command line's default): HTTP/2 when the target's TLS
	// offers it (ALPN, asked once per run on a connection of its own), and
	// for connections recorded as HTTP/2 on a cleartext target (prior
	// knowledge); HTTP/1.1 otherwise.
	ProtoAuto
	// ProtoH2: HTTP/2 for everything: ALPN h2 over TLS, prior knowledge
	// over cleartext.
	ProtoH2
	// ProtoH2C: HTTP/2 over cleartext with prior knowledge.
	ProtoH2C
)

func (p Protocol) String() string {
	return [...]string{"h1", "auto", "h2", "h2c"}[p]
}

// ParseProtocol parses auto, h1, h2 or h2c.
func ParseProtocol(s string) (Protocol, error) {
	switch s {
	case "auto":
		return ProtoAuto, nil
	case "h1", "http/1.1":
		return ProtoH1, nil
	case "h2":
		return ProtoH2, nil
	case "h2c":
		return ProtoH2C, nil
	}
	return 0, fmt.Errorf("protocol %q: use auto, h1, h2 or h2c", s)
}
