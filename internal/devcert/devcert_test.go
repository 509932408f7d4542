package devcert

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"wengang/internal/fault"
)

func readCert(t *testing.T, file string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", file)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	now := time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)
	f, err := Generate(dir, Options{
		Nodes: []Node{{Name: "node1", Counties: []string{"371521", "371502"}}, {Name: "node2", Counties: []string{"371526"}}},
		Hosts: []string{"city.example", "10.0.0.7"},
		Now:   func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.ReusedCA {
		t.Error("ReusedCA on a fresh directory")
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v, want 0700", st.Mode(), err)
	}
	for _, key := range []string{f.CAKey, f.CityKey, f.Nodes["node1"].ServerKey, f.Nodes["node1"].ClientKey, f.Nodes["node2"].ClientKey} {
		st, err := os.Stat(key)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v (%v), want 0600", key, st.Mode(), err)
		}
	}

	ca := readCert(t, f.CA)
	if !ca.IsCA {
		t.Fatal("ca.pem is not a CA")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	verify := func(c *x509.Certificate, usage x509.ExtKeyUsage) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
		return err
	}

	city := readCert(t, f.City)
	if err := verify(city, x509.ExtKeyUsageServerAuth); err != nil {
		t.Errorf("city certificate: %v", err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "city.example", "10.0.0.7"} {
		if err := city.VerifyHostname(h); err != nil {
			t.Errorf("city certificate: %v", err)
		}
	}
	if pub, ok := city.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("city key: %T, want ECDSA P-256", city.PublicKey)
	}
	if err := verify(city, x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("the city's server certificate also authenticates a client")
	}

	server1 := readCert(t, f.Nodes["node1"].Server)
	if err := server1.VerifyHostname("node1"); err != nil {
		t.Errorf("node1 server certificate: %v", err)
	}
	if len(Counties(server1)) != 0 {
		t.Errorf("node1's server certificate names counties %v", Counties(server1))
	}
	client1 := readCert(t, f.Nodes["node1"].Client)
	if err := verify(client1, x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("node1 client certificate: %v", err)
	}
	if got := Counties(client1); !slices.Equal(got, []string{"371502", "371521"}) {
		t.Errorf("node1 counties = %v", got)
	}
	if client1.Subject.CommonName != "node1" {
		t.Errorf("node1 client CN = %q", client1.Subject.CommonName)
	}
	if got := Counties(readCert(t, f.Nodes["node2"].Client)); !slices.Equal(got, []string{"371526"}) {
		t.Errorf("node2 counties = %v", got)
	}
	if !client1.NotAfter.Equal(now.Add(365 * 24 * time.Hour).Truncate(time.Second)) {
		t.Errorf("NotAfter = %v, want a year from now", client1.NotAfter)
	}
	if _, err := tls.LoadX509KeyPair(f.Nodes["node1"].Client, f.Nodes["node1"].ClientKey); err != nil {
		t.Errorf("node1 client pair: %v", err)
	}

	// A second run in the same directory keeps the CA and signs with it.
	caPEM, _ := os.ReadFile(f.CA)
	f2, err := Generate(dir, Options{Nodes: []Node{{Name: "node3", Counties: []string{"371581"}}}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if !f2.ReusedCA {
		t.Error("second run made a new CA")
	}
	if again, _ := os.ReadFile(f.CA); !bytes.Equal(again, caPEM) {
		t.Error("second run changed ca.pem")
	}
	if err := verify(readCert(t, f2.Nodes["node3"].Client), x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("node3, signed by the kept CA: %v", err)
	}
}

func TestGenerateRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"no county", Options{Nodes: []Node{{Name: "n1"}}}},
		{"bad county", Options{Nodes: []Node{{Name: "n1", Counties: []string{"37150"}}}}},
		{"city as a county", Options{Nodes: []Node{{Name: "n1", Counties: []string{"city"}}}}},
		{"bad node name", Options{Nodes: []Node{{Name: "../n1", Counties: []string{"371502"}}}}},
		{"node named ca", Options{Nodes: []Node{{Name: "ca", Counties: []string{"371502"}}}}},
		{"node twice", Options{Nodes: []Node{{Name: "n1", Counties: []string{"371502"}}, {Name: "n1", Counties: []string{"371521"}}}}},
		{"bad host", Options{Hosts: []string{"a b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if _, err := Generate(dir, tc.opts); !errors.Is(err, fault.ErrInvalid) {
				t.Fatalf("Generate = %v, want invalid", err)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("bad options still created %s", dir)
			}
		})
	}
}

func TestGenerateRefusesHalfACA(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, CAFile), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(dir, Options{}); !errors.Is(err, fault.ErrFailedPrecondition) {
		t.Fatalf("Generate = %v, want failed precondition", err)
	}
}

func TestCounties(t *testing.T) {
	uris := func(ss ...string) []*url.URL {
		var us []*url.URL
		for _, s := range ss {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatal(err)
			}
			us = append(us, u)
		}
		return us
	}
	for _, tc := range []struct {
		name string
		uris []*url.URL
		want []string
	}{
		{"none", nil, nil},
		{"one", uris("urn:wengang:county:371502"), []string{"371502"}},
		{"sorted and once", uris("urn:wengang:county:371526", "urn:wengang:county:371502", "urn:wengang:county:371526"), []string{"371502", "371526"}},
		{"others ignored", uris("spiffe://wengang/node1", "urn:wengang:county:city", "urn:wengang:county:37150", "urn:other:county:371521", "urn:wengang:county:371521"), []string{"371521"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Counties(&x509.Certificate{URIs: tc.uris, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Counties = %v, want %v", got, tc.want)
			}
		})
	}
}
