package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pgtest"
	"wengang/policy/access"
)

// migrations is a database with the token table and the audit log, as the
// node's and the city's migrations make it.
var migrations = fstest.MapFS{
	"0001_audit.sql":  {Data: []byte(audit.DDL)},
	"0002_access.sql": {Data: []byte(TokenDDL)},
}

func TestMigrationsHoldTheTokenDDL(t *testing.T) {
	for _, file := range []string{
		"../../node/store/migrations/0006_access.sql",
		"../../server/store/migrations/0002_access.sql",
	} {
		data, err := os.ReadFile(filepath.FromSlash(file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), TokenDDL) {
			t.Errorf("%s does not contain authn.TokenDDL verbatim", file)
		}
	}
}

func TestTokens(t *testing.T) {
	db := pgtest.NewDB(t, migrations)
	now := time.Date(2022, 4, 25, 9, 0, 0, 0, time.UTC)
	ts := &Tokens{DB: db, Now: func() time.Time { return now }}
	admin := access.Principal{Kind: access.KindSystem, Subject: "cli:root", Name: "root", Role: "system"}
	ctx := access.WithPrincipal(context.Background(), admin)

	tok, secret, err := ts.Create(ctx, access.RoleCountyClerk, "371502", " 张三 ", 720*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) != len(TokenPrefix)+52 {
		t.Errorf("secret %q: want wg_ and 52 base32 characters", secret)
	}
	if tok.ID == 0 || tok.Name != "张三" || tok.CreatedBy != "cli:root" || !tok.ExpiresAt.Equal(now.Add(720*time.Hour)) {
		t.Errorf("token = %+v", tok)
	}

	t.Run("lookup", func(t *testing.T) {
		p, err := ts.Lookup(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		want := access.Principal{Kind: access.KindPerson, Subject: tok.Subject(), Name: "张三", Role: access.RoleCountyClerk, Domain: "371502"}
		if p.Kind != want.Kind || p.Subject != want.Subject || p.Name != want.Name || p.Role != want.Role || p.Domain != want.Domain || p.Counties != nil {
			t.Errorf("principal = %+v, want %+v", p, want)
		}
	})

	t.Run("only the hash is stored", func(t *testing.T) {
		var hash []byte
		var row string
		if err := db.QueryRow(ctx, `SELECT token_hash, t::text FROM api_token t WHERE id = $1`, tok.ID).Scan(&hash, &row); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(secret))
		if !bytes.Equal(hash, sum[:]) {
			t.Error("token_hash is not the SHA-256 of the token")
		}
		if strings.Contains(row, strings.TrimPrefix(secret, TokenPrefix)) {
			t.Error("the token itself is stored")
		}
	})

	t.Run("tokens differ", func(t *testing.T) {
		_, other, err := ts.Create(ctx, access.RoleCountyClerk, "371502", "张三", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if other == secret {
			t.Fatal("two tokens are equal")
		}
	})

	t.Run("finance", func(t *testing.T) {
		_, s, err := ts.Create(ctx, access.RoleFinance, access.DomainCity, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		p, err := ts.Lookup(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if p.Kind != access.KindFinance || p.Name != p.Subject {
			t.Errorf("finance principal = %+v, want kind finance named by its subject", p)
		}
	})

	t.Run("creation is audited", func(t *testing.T) {
		es, err := audit.List(ctx, db, audit.Filter{Domain: "371502", ObjectType: "api_token"})
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 || es[0].Action != "token.create" || es[0].Actor.Subject == "" || !strings.Contains(es[0].Detail, access.RoleCountyClerk) {
			t.Fatalf("audit entries = %+v", es)
		}
	})

	t.Run("bad tokens", func(t *testing.T) {
		forged := TokenPrefix + strings.Repeat("a", 52)
		for _, tc := range []struct{ name, token, reason string }{
			{"empty", "", "malformed"},
			{"no prefix", strings.TrimPrefix(secret, TokenPrefix), "malformed"},
			{"short", secret[:len(secret)-1], "malformed"},
			{"not base32", TokenPrefix + strings.Repeat("!", 52), "malformed"},
			{"forged", forged, "unknown"},
			{"changed", secret[:len(secret)-1] + flip(secret[len(secret)-1]), "unknown"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := ts.Lookup(ctx, tc.token)
				if !errors.Is(err, fault.ErrUnauthenticated) || !strings.Contains(err.Error(), tc.reason) {
					t.Fatalf("Lookup = %v, want unauthenticated: %s", err, tc.reason)
				}
			})
		}
	})

	t.Run("expired", func(t *testing.T) {
		_, s, err := ts.Create(ctx, access.RoleAuditor, "371521", "李四", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		later := &Tokens{DB: db, Now: func() time.Time { return now.Add(time.Hour) }}
		if _, err := later.Lookup(ctx, s); !errors.Is(err, fault.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("Lookup an hour later = %v, want expired", err)
		}
		if _, err := ts.Lookup(ctx, s); err != nil {
			t.Fatalf("Lookup before expiry = %v", err)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		tk, s, err := ts.Create(ctx, access.RoleCityAdmin, access.DomainCity, "王五", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ts.Revoke(ctx, tk.ID)
		if err != nil || !r.RevokedAt.Equal(now) {
			t.Fatalf("Revoke = %+v, %v", r, err)
		}
		if _, err := ts.Lookup(ctx, s); !errors.Is(err, fault.ErrUnauthenticated) || !strings.Contains(err.Error(), "revoked") {
			t.Fatalf("Lookup after revocation = %v, want revoked", err)
		}
		// Revoking again changes nothing.
		again := &Tokens{DB: db, Now: func() time.Time { return now.Add(time.Minute) }}
		r2, err := again.Revoke(ctx, tk.ID)
		if err != nil || !r2.RevokedAt.Equal(now) {
			t.Fatalf("second Revoke = %+v, %v; want the first revocation", r2, err)
		}
		es, err := audit.List(ctx, db, audit.Filter{Domain: access.DomainCity, ObjectType: "api_token"})
		if err != nil {
			t.Fatal(err)
		}
		revocations := 0
		for _, e := range es {
			if e.Action == "token.revoke" {
				revocations++
			}
		}
		if revocations != 1 {
			t.Errorf("%d revocations audited, want 1", revocations)
		}
		if _, err := ts.Revoke(ctx, 999999); !errors.Is(err, fault.ErrNotFound) {
			t.Errorf("Revoke of an unknown id = %v, want not found", err)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		for _, tc := range []struct {
			role, domain, name string
			ttl                time.Duration
		}{
			{access.RoleCountyClerk, access.DomainCity, "", time.Hour},
			{access.RoleCityAdmin, "371502", "", time.Hour},
			{access.RoleNode, "371502", "", time.Hour},
			{access.RoleAnonymous, access.DomainCity, "", time.Hour},
			{"root", access.DomainCity, "", time.Hour},
			{access.RoleCountyClerk, "3715", "", time.Hour},
			{access.RoleCountyClerk, "371502", "", 0},
			{access.RoleCountyClerk, "371502", "a\nb", time.Hour},
		} {
			if _, _, err := ts.Create(ctx, tc.role, tc.domain, tc.name, tc.ttl); !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("Create(%q, %q, %q, %v) = %v, want invalid", tc.role, tc.domain, tc.name, tc.ttl, err)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		list, err := ts.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) < 5 || list[0].ID != tok.ID || !list[0].RevokedAt.IsZero() {
			t.Fatalf("List = %+v", list)
		}
		revoked := 0
		for _, tk := range list {
			if !tk.RevokedAt.IsZero() {
				revoked++
			}
		}
		if revoked != 1 {
			t.Errorf("%d revoked in the list, want 1", revoked)
		}
	})

	if err := ts.Ready(ctx); err != nil {
		t.Errorf("Ready on a migrated database = %v", err)
	}
}

func TestReadyNeedsAMigratedDatabase(t *testing.T) {
	db := pgtest.NewDB(t, nil)
	ts := &Tokens{DB: db}
	if err := ts.Ready(context.Background()); !errors.Is(err, fault.ErrFailedPrecondition) || !strings.Contains(err.Error(), "start the node or the city") {
		t.Fatalf("Ready = %v, want failed precondition telling to start the node or city once", err)
	}
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}
