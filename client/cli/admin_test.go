package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/audit"
	"wengang/internal/authn"
	"wengang/internal/devcert"
	"wengang/internal/pgtest"
	"wengang/policy/access"
)

// runAdmin runs an Admin command in-process and returns its exit status
// and output.
func runAdmin(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	code := Main(env, Admin(), args)
	return code, stdout.String(), stderr.String()
}

// adminDB returns a new test database, migrated as a node's or the city's
// is as far as tokens go, and its URL.
func adminDB(t *testing.T, migrated bool) (*pgxpool.Pool, string) {
	t.Helper()
	var fsys fs.FS // nil: an empty database
	if migrated {
		fsys = fstest.MapFS{
			"0001_audit.sql":  {Data: []byte(audit.DDL)},
			"0002_access.sql": {Data: []byte(authn.TokenDDL)},
		}
	}
	u := pgtest.NewURL(t, fsys)
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, u
}

func TestTokenCommands(t *testing.T) {
	pool, db := adminDB(t, true)
	ctx := context.Background()
	tokens := &authn.Tokens{DB: pool}

	code, stdout, stderr := runAdmin(t, "token", "create", "--db", db, "--role", "county_clerk", "--domain", "371502", "--name", "张三", "--ttl", "24h")
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, stderr)
	}
	secret := strings.TrimSuffix(stdout, "\n")
	if strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(secret, authn.TokenPrefix) {
		t.Fatalf("token create printed %q, want the token alone on one line", stdout)
	}
	if !strings.Contains(stderr, "will not be shown again") || strings.Contains(stderr, secret) {
		t.Errorf("token create's stderr = %q: want the warning, never the token", stderr)
	}
	p, err := tokens.Lookup(ctx, secret)
	if err != nil {
		t.Fatalf("the printed token does not work: %v", err)
	}
	if p.Role != access.RoleCountyClerk || p.Domain != "371502" || p.Name != "张三" {
		t.Errorf("principal = %+v", p)
	}
	es, err := audit.List(ctx, pool, audit.Filter{Domain: "371502"})
	if err != nil || len(es) != 1 || !strings.HasPrefix(es[0].Actor.Subject, "wengang token (") {
		t.Errorf("audit = %+v, %v; want the creation by the operator", es, err)
	}

	t.Run("list", func(t *testing.T) {
		code, stdout, stderr := runAdmin(t, "token", "list", "--db", db)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "county_clerk") || !strings.Contains(stdout, "张三") || !strings.Contains(stdout, "active") {
			t.Errorf("list = %q", stdout)
		}
		if strings.Contains(stdout, strings.TrimPrefix(secret, authn.TokenPrefix)) {
			t.Error("list shows the token")
		}
	})

	t.Run("revoke", func(t *testing.T) {
		list, err := tokens.List(ctx)
		if err != nil || len(list) != 1 {
			t.Fatalf("List = %v, %v", list, err)
		}
		id := list[0].Subject()[len("token:"):]
		code, stdout, stderr := runAdmin(t, "token", "revoke", "--db", db, "--id", id)
		if code != 0 || !strings.Contains(stdout, "revoked") {
			t.Fatalf("exit %d: %s%s", code, stdout, stderr)
		}
		if _, err := tokens.Lookup(ctx, secret); err == nil {
			t.Fatal("the revoked token still works")
		}
		_, stdout, _ = runAdmin(t, "token", "list", "--db", db)
		if !strings.Contains(stdout, "revoked") {
			t.Errorf("list after revoke = %q", stdout)
		}
		if code, _, stderr := runAdmin(t, "token", "revoke", "--db", db, "--id", "424242"); code != 1 || !strings.Contains(stderr, "no token 424242") {
			t.Errorf("revoke of an unknown id: exit %d, %q", code, stderr)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no db", []string{"token", "create", "--role", "county_clerk", "--domain", "371502"}, 2, "--db is required"},
		{"no role", []string{"token", "create", "--db", db, "--domain", "371502"}, 2, "--role and --domain are required"},
		{"unknown role", []string{"token", "create", "--db", db, "--role", "root", "--domain", "city"}, 2, "unknown role"},
		{"county role in the city", []string{"token", "create", "--db", db, "--role", "county_clerk", "--domain", "city"}, 2, "county"},
		{"city role in a county", []string{"token", "create", "--db", db, "--role", "city_admin", "--domain", "371502"}, 2, "city"},
		{"node role", []string{"token", "create", "--db", db, "--role", "node", "--domain", "371502"}, 2, "not given by a token"},
		{"bad ttl", []string{"token", "create", "--db", db, "--role", "county_clerk", "--domain", "371502", "--ttl", "-1h"}, 2, "ttl"},
		{"bad id", []string{"token", "revoke", "--db", db, "--id", "x"}, 2, "--id"},
		{"no subcommand", []string{"token"}, 2, "token create"},
		{"unknown subcommand", []string{"token", "show"}, 2, "unknown subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runAdmin(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.says) || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d saying %q", code, stdout, stderr, tc.code, tc.says)
			}
		})
	}
	if list, _ := tokens.List(ctx); len(list) != 1 {
		t.Errorf("refused commands created tokens: %d in all", len(list))
	}
}

func TestTokenCreateNeedsAMigratedDatabase(t *testing.T) {
	_, db := adminDB(t, false)
	code, stdout, stderr := runAdmin(t, "token", "create", "--db", db, "--role", "county_clerk", "--domain", "371502")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "start the node or the city") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestCertsCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, stdout, stderr := runAdmin(t, "certs", "--out", dir, "--nodes", "node1=371502,371521", "--nodes", "node2=371526", "--hosts", "city.example,10.1.2.3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "city.pem", "city-key.pem", "node1.pem", "node1-key.pem", "node1-client.pem", "node1-client-key.pem", "node2-client.pem"} {
		if !strings.Contains(stdout, filepath.Join(dir, f)) {
			t.Errorf("output does not list %s: %s", f, stdout)
		}
	}
	read := func(name string) *x509.Certificate {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := pem.Decode(data)
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := devcert.Counties(read("node1-client.pem")); !slices.Equal(got, []string{"371502", "371521"}) {
		t.Errorf("node1 counties = %v", got)
	}
	if got := devcert.Counties(read("node2-client.pem")); !slices.Equal(got, []string{"371526"}) {
		t.Errorf("node2 counties = %v", got)
	}
	if err := read("city.pem").VerifyHostname("city.example"); err != nil {
		t.Error(err)
	}

	// A second run keeps the CA.
	code, stdout, _ = runAdmin(t, "certs", "--out", dir, "--nodes", "node3=371581")
	if code != 0 || !strings.Contains(stdout, "existing CA, kept") {
		t.Errorf("second run: exit %d, %q", code, stdout)
	}

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no out", []string{"certs", "--nodes", "node1=371502"}},
		{"node without counties", []string{"certs", "--out", t.TempDir(), "--nodes", "node1"}},
		{"bad county", []string{"certs", "--out", t.TempDir(), "--nodes", "node1=3715"}},
		{"bad node name", []string{"certs", "--out", t.TempDir(), "--nodes", "a/b=371502"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _, stderr := runAdmin(t, tc.args...); code != 2 {
				t.Fatalf("exit %d (%s), want 2", code, stderr)
			}
		})
	}
}
