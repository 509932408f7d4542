package dashboard

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/authn"
	"wengang/internal/loadtest"
	"wengang/internal/pgtest"
	"wengang/policy/access"
	"wengang/policy/calendar"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/server/service"
	"wengang/server/store"
)

var update = flag.Bool("update", false, "rewrite the golden pages in testdata")

// origin is the origin of the test requests (httptest.NewRequest's host).
const origin = "http://example.com"

// dbCity is a dashboard over a fresh, seeded city database.
type dbCity struct {
	handler  http.Handler
	db       *pgxpool.Pool
	tokens   *authn.Tokens
	enforcer *access.Enforcer
}

func dbStart(t *testing.T, today civil.Date) *dbCity {
	t.Helper()
	pool := pgtest.NewDB(t, store.Migrations)
	cal, err := calendar.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	enf, err := access.New()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := func() time.Time { return time.Date(2022, 6, 1, 9, 0, 0, 0, time.UTC) }
	deps := &service.Deps{Store: store.New(pool), Log: log, Now: now, Params: refund.LoadParams,
		Calendar: cal, Today: func() civil.Date { return today }}
	tokens := &authn.Tokens{DB: pool}
	c := &dbCity{db: pool, tokens: tokens, enforcer: enf,
		handler: Handler(Config{Deps: deps, Tokens: tokens, Enforcer: enf, Log: log})}
	dbSeed(t, pool)
	return c
}

// dbSeed gives two counties progress:
//
//   - 371502: four items (paid on 05-20 and 05-25, released, returned);
//     40 screened, 4 eligible reported.
//   - 371521: two items in publicity, one objected; 30 screened, 2
//     eligible reported.
func dbSeed(t *testing.T, db *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	var es []loadtest.Entry
	add := func(county string, states ...string) {
		for i, s := range states {
			e := loadtest.Entries(1, []string{county})[0]
			e.USCC = loadtest.USCC(county, i+1)
			e.AmountFen = int64(100000*(i+1) + 55)
			e.State = s
			es = append(es, e)
		}
	}
	add("371502", "paid", "paid", "released", "returned")
	add("371521", "in_publicity", "objected")
	if err := loadtest.Seed(ctx, db, loadtest.Round{ID: "R2022-0001", Start: 20220509, End: 20220513, State: "released"}, es); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	at := time.Date(2022, 5, 16, 0, 0, 0, 0, time.UTC)
	exec(`INSERT INTO funding_request (county, id, round_id, instruction_count, total_fen, requested_at) VALUES ('371502', 'F-371502', 'R2022-0001', 2, 300110, $1)`, at)
	for i, paidOn := range []string{"2022-05-20", "2022-05-25"} {
		u := loadtest.USCC("371502", i+1)
		exec(`INSERT INTO payment_instruction (county, id, end_to_end_id, round_id, batch_id, uscc, policy_year, payee_name, account_no,
				bank, bank_code, account_kind, amount_fen, state, funding_request_id, released_at, paid_on)
			VALUES ('371502', $1, $1, 'R2022-0001', 'B-R2022-0001-371502', $2, 2022, 'x', '1', 'b', 'c', 'corporate', $3, 'paid', 'F-371502', $4, $5::date)`,
			"P-"+u, u, int64(100000*(i+1)+55), at, paidOn)
	}
	report := func(county string, units, eligible int64) {
		exec(`INSERT INTO screening_report (county, screening_id, revision, dataset_hash, as_of, policy_id, screened_units,
				screened_eligible_count, screened_eligible_fen, screened_hold_count, screened_hold_fen, screened_ineligible_count,
				reviewed_units, reviewed_eligible_count, reviewed_eligible_fen, reviewed_hold_count, reviewed_hold_fen, reviewed_ineligible_count,
				reported_by, reported_at)
			VALUES ($1, 'S-1', 1, 'h', '2022-03-31', 'liaocheng-2022', $2::bigint, $3::bigint, $3::bigint * 100, 0, 0, 0,
				$2::bigint, $3::bigint, $3::bigint * 250000 + 1, 0, 0, 0, 'node', $4)`,
			county, units, eligible, at)
	}
	report("371502", 40, 4)
	report("371521", 30, 2)
}

// token creates a token for role in domain and returns its id and secret.
func (c *dbCity) token(t *testing.T, role, domain, name string) (int64, string) {
	t.Helper()
	tok, secret, err := c.tokens.Create(context.Background(), role, domain, name, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok.ID, secret
}

// dbDo serves one request: a form POST when form is not nil, with the
// session cookie when secret is not empty and the given Origin header.
func (c *dbCity) dbDo(t *testing.T, method, path, secret, origin string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, path, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if secret != "" {
		r.AddCookie(&http.Cookie{Name: CookieName, Value: secret})
	}
	w := httptest.NewRecorder()
	c.handler.ServeHTTP(w, r)
	return w
}

// dbCookie returns the session cookie a response sets, if any.
func dbCookie(w *httptest.ResponseRecorder) (*http.Cookie, bool) {
	for _, ck := range w.Result().Cookies() {
		if ck.Name == CookieName {
			return ck, true
		}
	}
	return nil, false
}

func dbGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden page (go test -update rewrites it):\n%s", name, got)
	}
}

func TestSignIn(t *testing.T) {
	c := dbStart(t, 20220601)
	_, admin := c.token(t, access.RoleCityAdmin, access.DomainCity, "王市管")
	_, clerk := c.token(t, access.RoleCountyClerk, "371502", "李经办")

	t.Run("no cookie: the sign-in form", func(t *testing.T) {
		w := c.dbDo(t, "GET", "/dashboard/", "", "", nil)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `name="token"`) || !strings.Contains(w.Body.String(), "访问令牌") {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if _, ok := dbCookie(w); ok {
			t.Error("a cookie without signing in")
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("headers %v", w.Header())
		}
		dbGolden(t, "signin.html", w.Body.String())
	})
	for _, tc := range []struct {
		name, token string
		status      int
		want        string
	}{
		{"malformed token", "not-a-token", 401, "令牌无效、已过期或已被吊销"},
		{"forged token", admin[:len(admin)-4] + "aaaa", 401, "令牌无效、已过期或已被吊销"},
		{"empty token", "  ", 400, "请输入令牌"},
		// The policy gives county clerks no right to the progress.
		{"county clerk", clerk, 403, "该令牌的角色无权查看工作进度"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := c.dbDo(t, "POST", "/dashboard/signin", "", origin, url.Values{"token": {tc.token}})
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) || !strings.Contains(w.Body.String(), `name="token"`) {
				t.Errorf("%d %s", w.Code, w.Body)
			}
			if _, ok := dbCookie(w); ok {
				t.Error("a refused token was kept in a cookie")
			}
		})
	}
	t.Run("the policy refuses county clerks", func(t *testing.T) {
		p, err := c.tokens.Lookup(context.Background(), clerk)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.enforcer.Allow(p, Procedure, p.Domain); err == nil {
			t.Fatal("the policy now lets county clerks read the progress: the clerk cases above assume it does not")
		}
		// A clerk's cookie made by hand gets the sign-in form, not figures.
		w := c.dbDo(t, "GET", "/dashboard/", clerk, "", nil)
		if w.Code != 403 || strings.Contains(w.Body.String(), "<table") {
			t.Errorf("%d %s", w.Code, w.Body)
		}
		if ck, ok := dbCookie(w); !ok || ck.MaxAge >= 0 {
			t.Error("the clerk's cookie was not cleared")
		}
	})
	t.Run("city admin signs in", func(t *testing.T) {
		w := c.dbDo(t, "POST", "/dashboard/signin", "", origin, url.Values{"token": {admin}})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/dashboard/" {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		ck, ok := dbCookie(w)
		if !ok || ck.Value != admin || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/dashboard/" || ck.Secure {
			t.Errorf("cookie %+v", ck)
		}
	})
	t.Run("secure cookie over TLS", func(t *testing.T) {
		r := httptest.NewRequest("POST", "https://example.com/dashboard/signin", strings.NewReader(url.Values{"token": {admin}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "https://example.com")
		w := httptest.NewRecorder()
		c.handler.ServeHTTP(w, r)
		if ck, ok := dbCookie(w); r.TLS == nil || !ok || !ck.Secure {
			t.Errorf("%d cookie %+v", w.Code, ck)
		}
	})
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"other origin", map[string]string{"Origin": "http://evil.example"}},
		{"other referer", map[string]string{"Referer": "http://evil.example/page"}},
		{"null origin", map[string]string{"Origin": "null"}},
		{"neither", nil},
	} {
		t.Run("cross-site sign-in refused: "+tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/dashboard/signin", strings.NewReader(url.Values{"token": {admin}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			c.handler.ServeHTTP(w, r)
			if w.Code != 403 || !strings.Contains(w.Body.String(), "请求来源无效") {
				t.Errorf("%d %s", w.Code, w.Body)
			}
			if _, ok := dbCookie(w); ok {
				t.Error("a cross-site post set the cookie")
			}
		})
	}
	t.Run("same-origin referer accepted", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/dashboard/signin", strings.NewReader(url.Values{"token": {admin}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Referer", origin+"/dashboard/")
		w := httptest.NewRecorder()
		c.handler.ServeHTTP(w, r)
		if w.Code != http.StatusSeeOther {
			t.Errorf("%d %s", w.Code, w.Body)
		}
	})
}

func TestDashboard(t *testing.T) {
	c := dbStart(t, 20220601)
	adminID, admin := c.token(t, access.RoleCityAdmin, access.DomainCity, "王市管")
	_, auditor := c.token(t, access.RoleAuditor, "371521", "赵审计")

	t.Run("city admin sees every county", func(t *testing.T) {
		w := c.dbDo(t, "GET", "/dashboard/", admin, "", nil)
		body := w.Body.String()
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, body)
		}
		for _, want := range []string{
			"2022年6月1日", "2022年5月31日", "2022年6月30日", "王市管（市级管理员，市级）",
			// 371502: 4 eligible reported for 10,000.01 yuan; the two paid
			// 1,000.55 + 2,000.55; met the county deadline.
			`<td class="num">40</td><td class="num">4</td><td class="num">10,000.01</td>`,
			`<td class="num">2</td><td class="num">3,001.10</td>`,
			`<span class="status met">按期</span>`, `<span class="status missed">逾期</span>`, `<span class="status open">进行中</span>`,
			`<tr class="total"><th scope="row">合计</th><td class="num">70</td>`,
			`action="/dashboard/signout"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if n := strings.Count(body, `<tr><th scope="row">`); n != 11 {
			t.Errorf("%d county rows, want Liaocheng's 11", n)
		}
		dbGolden(t, "progress.html", body)
	})
	t.Run("a county auditor sees its own county only", func(t *testing.T) {
		w := c.dbDo(t, "GET", "/dashboard/", auditor, "", nil)
		body := w.Body.String()
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, body)
		}
		if n := strings.Count(body, `<tr><th scope="row">`); n != 1 {
			t.Errorf("%d county rows, want 1", n)
		}
		if !strings.Contains(body, `<td class="num">30</td><td class="num">2</td>`) || strings.Contains(body, `<td class="num">40</td>`) {
			t.Errorf("not 371521's figures alone:\n%s", body)
		}
	})
	t.Run("sign-out clears the cookie", func(t *testing.T) {
		if w := c.dbDo(t, "POST", "/dashboard/signout", admin, "http://evil.example", url.Values{}); w.Code != 403 {
			t.Errorf("cross-site sign-out: %d", w.Code)
		} else if _, ok := dbCookie(w); ok {
			t.Error("a cross-site sign-out touched the cookie")
		}
		w := c.dbDo(t, "POST", "/dashboard/signout", admin, origin, url.Values{})
		ck, ok := dbCookie(w)
		if w.Code != http.StatusSeeOther || !ok || ck.MaxAge >= 0 || ck.Value != "" || ck.Path != "/dashboard/" {
			t.Errorf("%d cookie %+v", w.Code, ck)
		}
	})
	t.Run("revoked token: back to sign-in at once", func(t *testing.T) {
		if _, err := c.tokens.Revoke(context.Background(), adminID); err != nil {
			t.Fatal(err)
		}
		w := c.dbDo(t, "GET", "/dashboard/", admin, "", nil)
		body := w.Body.String()
		if w.Code != 401 || !strings.Contains(body, `name="token"`) || !strings.Contains(body, "登录已失效") || strings.Contains(body, "<table") {
			t.Errorf("%d %s", w.Code, body)
		}
		if ck, ok := dbCookie(w); !ok || ck.MaxAge >= 0 {
			t.Error("the revoked token's cookie was not cleared")
		}
	})
	t.Run("stylesheet and unknown paths", func(t *testing.T) {
		if w := c.dbDo(t, "GET", "/dashboard/dashboard.css", "", "", nil); w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
			t.Errorf("css: %d %v", w.Code, w.Header())
		}
		if w := c.dbDo(t, "GET", "/dashboard/signin", "", "", nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/dashboard/" {
			t.Errorf("GET signin: %d", w.Code)
		}
		if w := c.dbDo(t, "GET", "/dashboard/nope", "", "", nil); w.Code != 404 || !strings.Contains(w.Body.String(), "页面不存在") {
			t.Errorf("unknown: %d", w.Code)
		}
	})
}

func TestYuan(t *testing.T) {
	for _, tc := range []struct {
		fen  int64
		want string
	}{
		{0, "0.00"}, {5, "0.05"}, {100, "1.00"}, {99999, "999.99"}, {100000, "1,000.00"},
		{123456789, "1,234,567.89"}, {-100000055, "-1,000,000.55"},
	} {
		if got := yuan(tc.fen); got != tc.want {
			t.Errorf("yuan(%d) = %q, want %q", tc.fen, got, tc.want)
		}
	}
}
