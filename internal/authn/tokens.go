// Package authn says who is calling: bearer tokens for people and finance
// systems (random, shown once, stored only as their SHA-256), client
// certificates for county nodes, and nobody for the public portal. Its one
// Connect interceptor authenticates every request, asks the access policy
// (policy/access) whether the caller may make it, and puts the principal
// into the request's context.
//
// The token table is the same in the node's and the city's databases
// (TokenDDL), so its SQL lives here once.
package authn

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"wengang/internal/audit"
	"wengang/internal/fault"
	"wengang/internal/pg"
	"wengang/policy/access"
)

// TokenDDL creates the token table; the node's and the city's migrations
// include it verbatim. Only the SHA-256 of a token is stored.
const TokenDDL = `
CREATE TABLE api_token (
	id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_hash bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
	name       text        NOT NULL,
	role       text        NOT NULL,
	domain     text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL CHECK (expires_at > created_at),
	revoked_at timestamptz,
	created_by text        NOT NULL
);
`

// TokenPrefix begins every token, so that a leaked one is recognizable
// (and secret scanners can look for it).
const TokenPrefix = "wg_"

// tokenBytes is the randomness of a token.
const tokenBytes = 32

var encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// DB is what Tokens needs of a database: *pgxpool.Pool.
type DB interface {
	pg.Beginner
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Tokens keeps bearer tokens in the table api_token of DB (the node's or
// the city's database, migrated).
type Tokens struct {
	DB  DB
	Now func() time.Time // the clock; nil means time.Now
}

// Token is a bearer token as stored: never the secret.
type Token struct {
	ID        int64
	Name      string // whom it is for, such as a person's name
	Role      string
	Domain    string
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero while not revoked
	CreatedBy string
}

// Subject is how a token's holder is named in principals and the audit
// log: "token:ID".
func (t Token) Subject() string { return "token:" + strconv.FormatInt(t.ID, 10) }

func (ts *Tokens) now() time.Time {
	if ts.Now != nil {
		return ts.Now()
	}
	return time.Now()
}

// Create makes a token for role in domain, valid for ttl, and returns it
// with its secret, which is stored nowhere and cannot be shown again. The
// creation is audited in the token's domain, under the principal of ctx
// (access.WithPrincipal; the system otherwise). A role that may not be held
// in domain (access.ValidAssignment), a ttl that is not positive or a name
// with control characters is fault.ErrInvalid.
func (ts *Tokens) Create(ctx context.Context, role, domain, name string, ttl time.Duration) (Token, string, error) {
	name = strings.TrimSpace(name)
	if err := access.ValidAssignment(role, domain); err != nil {
		return Token{}, "", err
	}
	if ttl <= 0 {
		return Token{}, "", fault.New(fault.ErrInvalid, "ttl %v: want a positive duration such as 720h (有效期应为正数)", ttl)
	}
	if len(name) > 200 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return Token{}, "", fault.New(fault.ErrInvalid, "name: at most 200 characters, no control characters")
	}
	raw := make([]byte, tokenBytes)
	rand.Read(raw) // never fails (crypto/rand, Go 1.24+)
	secret := TokenPrefix + strings.ToLower(encoding.EncodeToString(raw))
	hash := sha256.Sum256([]byte(secret))

	actor := actorOf(ctx)
	now := ts.now().UTC().Truncate(time.Microsecond)
	t := Token{Name: name, Role: role, Domain: domain, CreatedAt: now, ExpiresAt: now.Add(ttl), CreatedBy: actor.Subject}
	err := pg.WithTx(ctx, ts.DB, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO api_token (token_hash, name, role, domain, created_at, expires_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			hash[:], t.Name, t.Role, t.Domain, t.CreatedAt, t.ExpiresAt, t.CreatedBy).Scan(&t.ID)
		if err != nil {
			return fmt.Errorf("authn: create token: %w", pg.Translate(err))
		}
		return appendAudit(ctx, tx, actor, "token.create", t, t.CreatedAt)
	})
	if err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// Lookup returns the principal a token stands for. A malformed, unknown or
// forged token, an expired one and a revoked one are
// fault.ErrUnauthenticated, each with its reason.
func (ts *Tokens) Lookup(ctx context.Context, secret string) (access.Principal, error) {
	body, ok := strings.CutPrefix(secret, TokenPrefix)
	if raw, err := encoding.DecodeString(strings.ToUpper(body)); !ok || err != nil || len(raw) != tokenBytes {
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "malformed bearer token: want %s followed by %d base32 characters (令牌格式错误)", TokenPrefix, encoding.EncodedLen(tokenBytes))
	}
	hash := sha256.Sum256([]byte(secret))
	var (
		t       Token
		revoked *time.Time
	)
	err := ts.DB.QueryRow(ctx, `SELECT id, name, role, domain, created_at, expires_at, revoked_at, created_by
		FROM api_token WHERE token_hash = $1`, hash[:]).
		Scan(&t.ID, &t.Name, &t.Role, &t.Domain, &t.CreatedAt, &t.ExpiresAt, &revoked, &t.CreatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "unknown bearer token (令牌无效)")
	}
	if err != nil {
		return access.Principal{}, fmt.Errorf("authn: look up token: %w", err)
	}
	switch now := ts.now(); {
	case revoked != nil:
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "bearer token %d was revoked at %s (令牌已吊销)", t.ID, revoked.UTC().Format(time.RFC3339))
	case !now.Before(t.ExpiresAt):
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "bearer token %d expired at %s (令牌已过期)", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := access.ValidAssignment(t.Role, t.Domain); err != nil {
		return access.Principal{}, fault.New(fault.ErrUnauthenticated, "bearer token %d holds a role this version does not grant: %v", t.ID, err)
	}
	return principal(t), nil
}

// principal is the caller a token stands for.
func principal(t Token) access.Principal {
	kind := access.KindPerson
	if t.Role == access.RoleFinance {
		kind = access.KindFinance
	}
	name := t.Name
	if name == "" {
		name = t.Subject()
	}
	return access.Principal{Kind: kind, Subject: t.Subject(), Name: name, Role: t.Role, Domain: t.Domain}
}

// Revoke revokes token id from now on and returns it. Revoking a revoked
// token changes nothing and returns it as it is; an unknown id is
// fault.ErrNotFound. The revocation is audited as Create's creation is.
func (ts *Tokens) Revoke(ctx context.Context, id int64) (Token, error) {
	var t Token
	err := pg.WithTx(ctx, ts.DB, func(tx pgx.Tx) error {
		var revoked *time.Time
		err := tx.QueryRow(ctx, `SELECT id, name, role, domain, created_at, expires_at, revoked_at, created_by
			FROM api_token WHERE id = $1 FOR UPDATE`, id).
			Scan(&t.ID, &t.Name, &t.Role, &t.Domain, &t.CreatedAt, &t.ExpiresAt, &revoked, &t.CreatedBy)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.ErrNotFound, "no token %d (令牌不存在)", id)
		}
		if err != nil {
			return fmt.Errorf("authn: revoke token %d: %w", id, err)
		}
		if revoked != nil {
			t.RevokedAt = *revoked
			return nil
		}
		t.RevokedAt = ts.now().UTC().Truncate(time.Microsecond)
		if _, err := tx.Exec(ctx, `UPDATE api_token SET revoked_at = $2 WHERE id = $1`, id, t.RevokedAt); err != nil {
			return fmt.Errorf("authn: revoke token %d: %w", id, err)
		}
		return appendAudit(ctx, tx, actorOf(ctx), "token.revoke", t, t.RevokedAt)
	})
	if err != nil {
		return Token{}, err
	}
	return t, nil
}

// List returns every token, oldest first.
func (ts *Tokens) List(ctx context.Context) ([]Token, error) {
	rows, err := ts.DB.Query(ctx, `SELECT id, name, role, domain, created_at, expires_at, revoked_at, created_by
		FROM api_token ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("authn: list tokens: %w", err)
	}
	var (
		list    []Token
		t       Token
		revoked *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&t.ID, &t.Name, &t.Role, &t.Domain, &t.CreatedAt, &t.ExpiresAt, &revoked, &t.CreatedBy}, func() error {
		t.RevokedAt = time.Time{}
		if revoked != nil {
			t.RevokedAt = *revoked
		}
		list = append(list, t)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("authn: list tokens: %w", err)
	}
	return list, nil
}

// Ready returns nil when the database has the token table and the audit
// log, else fault.ErrFailedPrecondition saying that the node or the city
// must be started once to migrate it.
func (ts *Tokens) Ready(ctx context.Context) error {
	var tokens, log *string
	if err := ts.DB.QueryRow(ctx, `SELECT to_regclass('api_token')::text, to_regclass('audit_log')::text`).Scan(&tokens, &log); err != nil {
		return fmt.Errorf("authn: %w", err)
	}
	if tokens == nil || log == nil {
		return fault.New(fault.ErrFailedPrecondition,
			"this database has no api_token or audit_log table: start the node or the city on it once to migrate it (请先启动一次节点或市级服务以完成数据库迁移)")
	}
	return nil
}

// actorOf is the principal that creates or revokes tokens.
func actorOf(ctx context.Context) access.Principal {
	if p, ok := access.PrincipalFrom(ctx); ok {
		return p
	}
	return access.System("authn")
}

func appendAudit(ctx context.Context, tx pgx.Tx, actor access.Principal, action string, t Token, at time.Time) error {
	detail, err := json.Marshal(map[string]string{
		"name": t.Name, "role": t.Role, "domain": t.Domain, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339),
	})
	if err != nil {
		return err
	}
	_, err = audit.Append(ctx, tx, audit.Entry{
		Domain: t.Domain, At: at, Actor: actor, Action: action, ObjectType: "api_token",
		ObjectID: strconv.FormatInt(t.ID, 10), Detail: string(detail),
	})
	return err
}
