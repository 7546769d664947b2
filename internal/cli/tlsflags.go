package cli

import (
	"github.com/herd-replay/herd/replay"
	"github.com/spf13/pflag"
)

// tlsFlags are the protocol and TLS options of herd replay and herd ramp.
type tlsFlags struct {
	Protocol   string
	CACert     string
	ClientCert string
	ClientKey  string
	ServerName string
	TLSMin     string
}

func (f *tlsFlags) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Protocol, "protocol", "auto", "auto: HTTP/2 where a TLS target offers it (ALPN) and for connections recorded as HTTP/2, HTTP/1.1 otherwise; h1: HTTP/1.1 only; h2: HTTP/2 only (ALPN over TLS, prior knowledge without); h2c: HTTP/2 without TLS")
	fs.StringVar(&f.CACert, "ca-cert", "", "PEM file of CA certificates to trust besides the system's (a private staging CA)")
	fs.StringVar(&f.ClientCert, "client-cert", "", "PEM file of a client certificate to present (mTLS); needs --client-key")
	fs.StringVar(&f.ClientKey, "client-key", "", "PEM file of the --client-cert's private key")
	fs.StringVar(&f.ServerName, "server-name", "", "name sent as SNI and verified in the target's certificate, when --target is an IP address")
	fs.StringVar(&f.TLSMin, "tls-min-version", "", "oldest TLS version to accept: 1.0, 1.1, 1.2 or 1.3 (default: Go's, 1.2)")
}

// apply checks the flags and sets the protocol and TLS configuration of
// the run.
func (f *tlsFlags) apply(st *replay.Settings, insecure bool) error {
	p, err := replay.ParseProtocol(f.Protocol)
	if err != nil {
		return &UsageError{Err: err}
	}
	st.Protocol = p
	if p == replay.ProtoH2C && st.Target.Scheme == "https" {
		return usageErrorf("--protocol h2c is HTTP/2 without TLS: the target is https (use --protocol h2)")
	}
	if (f.ClientCert == "") != (f.ClientKey == "") {
		return usageErrorf("--client-cert and --client-key go together")
	}
	if f.TLSMin != "" {
		if _, err := replay.ParseTLSVersion(f.TLSMin); err != nil {
			return &UsageError{Err: err}
		}
	}
	if f.CACert != "" || f.ClientCert != "" || f.ServerName != "" || f.TLSMin != "" {
		if st.Target.Scheme != "https" {
			return usageErrorf("--ca-cert, --client-cert, --server-name and --tls-min-version need an https target")
		}
	} else if !insecure || st.Target.Scheme != "https" {
		return nil
	}
	st.TLS, err = replay.TLSOptions{CACert: f.CACert, ClientCert: f.ClientCert, ClientKey: f.ClientKey,
		ServerName: f.ServerName, MinVersion: f.TLSMin, Insecure: insecure}.Config()
	return err
}
