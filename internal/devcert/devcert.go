// Package devcert makes the certificates of a development or test
// deployment: a CA, the city server's certificate, and for each county node
// a server certificate and a client certificate whose SAN URIs name the
// counties the node serves (urn:wengang:county:371502). The city trusts a
// node for exactly those counties; Counties reads them back.
//
// Everything is ECDSA P-256; private keys are written 0600. Real
// deployments use the province's CA; the certificates have the same shape.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"wengang/internal/fault"
	"wengang/policy/access"
)

// CountyURIPrefix begins the SAN URI that names a county in a node's client
// certificate; the county code follows.
const CountyURIPrefix = "urn:wengang:county:"

// Node is a county node to make certificates for.
type Node struct {
	Name     string   // the certificate's common name and a DNS name: letters, digits, '-', '.'
	Counties []string // the counties it serves, six-digit codes
}

// Options says what Generate makes.
type Options struct {
	Nodes []Node
	// Hosts are extra DNS names or IP addresses of the city server and of
	// every node's server certificate, beyond localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Validity of the leaf certificates; default one year. The CA is valid
	// ten years.
	Validity time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Files names the files of a generated set.
type Files struct {
	CA, CAKey     string
	City, CityKey string
	Nodes         map[string]NodeFiles // by node name
	// ReusedCA is set when the directory's existing CA signed the set.
	ReusedCA bool
}

// NodeFiles names one node's certificates and keys.
type NodeFiles struct {
	Server, ServerKey string // the node's own HTTPS server
	Client, ClientKey string // presented to the city
}

// File names in the output directory.
const (
	CAFile      = "ca.pem"
	CAKeyFile   = "ca-key.pem"
	CityFile    = "city.pem"
	CityKeyFile = "city-key.pem"
)

// NodeServerFile and the functions below name a node's files in the output
// directory.
func NodeServerFile(node string) string    { return node + ".pem" }
func NodeServerKeyFile(node string) string { return node + "-key.pem" }
func NodeClientFile(node string) string    { return node + "-client.pem" }
func NodeClientKeyFile(node string) string { return node + "-client-key.pem" }

var nodeName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$`)

func (o Options) validate() error {
	seen := map[string]bool{}
	for _, n := range o.Nodes {
		if !nodeName.MatchString(n.Name) || n.Name == "ca" || n.Name == "city" {
			return fault.New(fault.ErrInvalid, "node name %q: want letters, digits, '-' and '.', not \"ca\" or \"city\"", n.Name)
		}
		if seen[n.Name] {
			return fault.New(fault.ErrInvalid, "node %s named twice", n.Name)
		}
		seen[n.Name] = true
		if len(n.Counties) == 0 {
			return fault.New(fault.ErrInvalid, "node %s serves no county", n.Name)
		}
		for _, c := range n.Counties {
			if !access.ValidCounty(c) {
				return fault.New(fault.ErrInvalid, "node %s: county %q is not a six-digit code", n.Name, c)
			}
		}
	}
	for _, h := range o.Hosts {
		if h == "" || strings.ContainsAny(h, " /,") {
			return fault.New(fault.ErrInvalid, "host %q: want a DNS name or an IP address", h)
		}
	}
	if o.Validity < 0 {
		return fault.New(fault.ErrInvalid, "validity %v is negative", o.Validity)
	}
	return nil
}

// Generate writes into dir (created 0700 if missing) a CA, the city
// server's certificate and each node's server and client certificates. When
// dir already holds ca.pem and ca-key.pem, that CA signs the new
// certificates and is kept, so that nodes added later join the same trust;
// leaf files are overwritten. Bad options are fault.ErrInvalid.
func Generate(dir string, opts Options) (Files, error) {
	if err := opts.validate(); err != nil {
		return Files{}, err
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	validity := opts.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("devcert: %w", err)
	}
	f := Files{
		CA: filepath.Join(dir, CAFile), CAKey: filepath.Join(dir, CAKeyFile),
		City: filepath.Join(dir, CityFile), CityKey: filepath.Join(dir, CityKeyFile),
		Nodes: map[string]NodeFiles{},
	}
	ca, caKey, reused, err := loadOrMakeCA(f.CA, f.CAKey, now())
	if err != nil {
		return Files{}, err
	}
	f.ReusedCA = reused

	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, opts.Hosts...)
	leaf := func(cn string, dns []string, usage x509.ExtKeyUsage, uris []*url.URL, certFile, keyFile string) error {
		tmpl, err := template(cn, now(), validity)
		if err != nil {
			return err
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		for _, h := range dns {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if !slices.Contains(tmpl.DNSNames, h) {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		tmpl.URIs = uris
		return issue(tmpl, ca, caKey, certFile, keyFile)
	}
	if err := leaf("wengang city", hosts, x509.ExtKeyUsageServerAuth, nil, f.City, f.CityKey); err != nil {
		return Files{}, err
	}
	for _, n := range opts.Nodes {
		nf := NodeFiles{
			Server: filepath.Join(dir, NodeServerFile(n.Name)), ServerKey: filepath.Join(dir, NodeServerKeyFile(n.Name)),
			Client: filepath.Join(dir, NodeClientFile(n.Name)), ClientKey: filepath.Join(dir, NodeClientKeyFile(n.Name)),
		}
		if err := leaf(n.Name, append([]string{n.Name}, hosts...), x509.ExtKeyUsageServerAuth, nil, nf.Server, nf.ServerKey); err != nil {
			return Files{}, err
		}
		var uris []*url.URL
		for _, c := range n.Counties {
			u, err := url.Parse(CountyURIPrefix + c)
			if err != nil {
				return Files{}, fmt.Errorf("devcert: %w", err)
			}
			uris = append(uris, u)
		}
		if err := leaf(n.Name, nil, x509.ExtKeyUsageClientAuth, uris, nf.Client, nf.ClientKey); err != nil {
			return Files{}, err
		}
		f.Nodes[n.Name] = nf
	}
	return f, nil
}

// Counties returns the county codes that cert's SAN URIs name
// (urn:wengang:county:CODE with a six-digit CODE), sorted, each once. Other
// URIs are ignored; none means the certificate speaks for no county.
func Counties(cert *x509.Certificate) []string {
	var cs []string
	for _, u := range cert.URIs {
		code, ok := strings.CutPrefix(u.String(), CountyURIPrefix)
		if ok && access.ValidCounty(code) && !slices.Contains(cs, code) {
			cs = append(cs, code)
		}
	}
	slices.Sort(cs)
	return cs
}

// template is a leaf or CA certificate template with a random serial.
func template(cn string, now time.Time, validity time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("devcert: serial: %w", err)
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"Wengang development"}},
		NotBefore:    now.Add(-time.Hour), // tolerate clocks a little behind
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, nil
}

func loadOrMakeCA(certFile, keyFile string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, bool, error) {
	_, certErr := os.Stat(certFile)
	_, keyErr := os.Stat(keyFile)
	if certErr == nil && keyErr == nil {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, nil, false, fmt.Errorf("devcert: existing CA: %w", err)
		}
		key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, false, fmt.Errorf("devcert: existing CA %s: not an ECDSA key", keyFile)
		}
		cert, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			return nil, nil, false, fmt.Errorf("devcert: existing CA: %w", err)
		}
		if !cert.IsCA {
			return nil, nil, false, fmt.Errorf("devcert: %s is not a CA certificate", certFile)
		}
		return cert, key, true, nil
	}
	if !errors.Is(certErr, os.ErrNotExist) || !errors.Is(keyErr, os.ErrNotExist) {
		return nil, nil, false, fault.New(fault.ErrFailedPrecondition,
			"devcert: %s and %s must both exist (to reuse the CA) or neither (to make one)", certFile, keyFile)
	}
	tmpl, err := template("Wengang development CA", now, 10*365*24*time.Hour)
	if err != nil {
		return nil, nil, false, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	if err := issue(tmpl, nil, nil, certFile, keyFile); err != nil {
		return nil, nil, false, err
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, false, fmt.Errorf("devcert: new CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, false, fmt.Errorf("devcert: new CA: %w", err)
	}
	return cert, pair.PrivateKey.(*ecdsa.PrivateKey), false, nil
}

// issue makes a key, signs tmpl with the CA (self-signed when ca is nil)
// and writes the certificate (0644) and the key (0600).
func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("devcert: key: %w", err)
	}
	parent, signer := ca, caKey
	if ca == nil {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return fmt.Errorf("devcert: sign %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("devcert: key: %w", err)
	}
	if err := write(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return write(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// write replaces file with data by way of a temporary file of the given
// mode, so that a key is never readable by others, not even for a moment,
// and a failure leaves the old file.
func write(file string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*.tmp")
	if err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("devcert: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("devcert: write %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devcert: write %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	return nil
}
