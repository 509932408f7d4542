// Package dashboard is the city administrators' progress dashboard
// (工作进度): a server-rendered HTML page in Chinese, mounted at /dashboard/
// on the city's port, showing ProgressService.GetProgress as a table.
//
// People sign in with their bearer token (wengang token create): the form
// at /dashboard/ takes it, checks it (authn Lookup, then the access policy
// for ProgressService.GetProgress in the token's domain) and keeps it in an
// HttpOnly, SameSite=Strict cookie scoped to Prefix. Every page load checks
// the cookie's token again, so a revoked or expired token, or one whose
// role lost the right, signs its holder out at once. The POSTs (sign-in,
// sign-out) are refused unless their Origin (or Referer) names this host.
//
// The figures come from calling the ProgressService handler with the
// token's principal, so what a caller sees (every county, or only its own)
// is decided by the service, never here.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"connectrpc.com/connect"

	"wengang/internal/authn"
	"wengang/internal/fault"
	"wengang/internal/protoconv"
	"wengang/policy/access"
	"wengang/policy/county"
	"wengang/policy/money"
	wengangv1 "wengang/proto/wengang/v1"
	"wengang/server/service"
)

//go:embed templates/*.html templates/dashboard.css
var files embed.FS

// Prefix is the path the dashboard is mounted at.
const Prefix = "/dashboard/"

// CookieName is the cookie that carries the signed-in token.
const CookieName = "wengang_dashboard"

// Procedure is the RPC whose right the dashboard requires.
const Procedure = "/wengang.v1.ProgressService/GetProgress"

// maxForm bounds a POSTed form, in bytes.
const maxForm = 4 << 10

// Config configures the dashboard. Every field but Log is required.
type Config struct {
	// Deps are the city's service dependencies: the ProgressService is
	// called with them.
	Deps *service.Deps
	// Tokens looks up bearer tokens: &authn.Tokens{DB: pool}.
	Tokens authn.Lookuper
	// Enforcer is the access policy; a token must be allowed Procedure in
	// its own domain.
	Enforcer *access.Enforcer
	Log      *slog.Logger // default: discard
}

// dashboard is the handler.
type dashboard struct {
	cfg      Config
	progress *service.ProgressService
	tmpl     *template.Template
	css      []byte
	mux      *http.ServeMux
}

// Handler returns the dashboard's handler, serving paths under Prefix. It
// panics when cfg lacks Deps, Tokens or Enforcer (a wiring mistake).
func Handler(cfg Config) http.Handler {
	switch {
	case cfg.Deps == nil:
		panic("dashboard: Config.Deps is nil")
	case cfg.Tokens == nil:
		panic("dashboard: Config.Tokens is nil")
	case cfg.Enforcer == nil:
		panic("dashboard: Config.Enforcer is nil")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	tmpl := template.Must(template.New("").Funcs(template.FuncMap{
		"yuan": yuan, "date": dateText, "status": statusText, "statusClass": statusClass, "role": roleText, "domain": domainText(county.NewRegistry(county.Liaocheng())),
	}).ParseFS(files, "templates/*.html"))
	css, err := files.ReadFile("templates/dashboard.css")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	d := &dashboard{cfg: cfg, progress: &service.ProgressService{Deps: cfg.Deps}, tmpl: tmpl, css: css, mux: http.NewServeMux()}
	d.mux.HandleFunc("GET "+Prefix+"{$}", d.page)
	d.mux.HandleFunc("POST "+Prefix+"signin", d.signIn)
	d.mux.HandleFunc("POST "+Prefix+"signout", d.signOut)
	// A reloaded or bookmarked form address leads back to the dashboard.
	d.mux.Handle("GET "+Prefix+"signin", http.RedirectHandler(Prefix, http.StatusSeeOther))
	d.mux.HandleFunc("GET "+Prefix+"dashboard.css", d.serveCSS)
	return d
}

func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "same-origin")
	if _, pattern := d.mux.Handler(r); pattern == "" {
		d.render(w, http.StatusNotFound, "error.html", errorPage{Title: "页面不存在", Message: "您访问的页面不存在。"})
		return
	}
	d.mux.ServeHTTP(w, r)
}

func (d *dashboard) serveCSS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(d.css)
}

// signInPage is the data of signin.html.
type signInPage struct {
	Title string
	Error string
}

// errorPage is the data of error.html.
type errorPage struct {
	Title   string
	Message string
}

// progressPage is the data of progress.html.
type progressPage struct {
	Title       string
	Who         access.Principal
	AsOf        *wengangv1.Date
	CountyPayBy *wengangv1.Date
	AllPaidBy   *wengangv1.Date
	Counties    []*wengangv1.CountyProgress
	Total       *wengangv1.CountyProgress
}

// page serves the dashboard to a signed-in caller whose token still holds
// the right, and the sign-in form to anyone else.
func (d *dashboard) page(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		d.render(w, http.StatusOK, "signin.html", signInPage{Title: "登录"})
		return
	}
	p, err := d.check(r.Context(), c.Value)
	if err != nil {
		status, msg := d.refusal(r, err)
		if status == http.StatusInternalServerError {
			d.render(w, status, "error.html", errorPage{Title: "系统错误", Message: msg})
			return
		}
		// The token no longer works: forget it, and ask for another.
		clearCookie(w, r)
		d.render(w, status, "signin.html", signInPage{Title: "登录", Error: "登录已失效：" + msg})
		return
	}
	resp, err := d.progress.GetProgress(access.WithPrincipal(r.Context(), p), connect.NewRequest(&wengangv1.GetProgressRequest{}))
	if err != nil {
		d.cfg.Log.ErrorContext(r.Context(), "dashboard: get progress", "subject", p.Subject, "err", err)
		status, msg := http.StatusInternalServerError, "暂时无法读取工作进度，请稍后再试。"
		if errors.Is(err, fault.ErrPermissionDenied) {
			status, msg = http.StatusForbidden, "您无权查看工作进度。"
		}
		d.render(w, status, "error.html", errorPage{Title: "无法显示", Message: msg})
		return
	}
	m := resp.Msg
	d.render(w, http.StatusOK, "progress.html", progressPage{
		Title: "工作进度", Who: p, AsOf: m.GetAsOf(), CountyPayBy: m.GetCountyPayBy(), AllPaidBy: m.GetAllPaidBy(),
		Counties: m.GetCounties(), Total: m.GetTotal(),
	})
}

// signIn checks the POSTed token and, when it may read the progress, keeps
// it in the cookie and sends the browser to the dashboard.
func (d *dashboard) signIn(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		d.crossSite(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		d.render(w, http.StatusBadRequest, "signin.html", signInPage{Title: "登录", Error: "表单无效，请重新输入令牌。"})
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	if secret == "" {
		d.render(w, http.StatusBadRequest, "signin.html", signInPage{Title: "登录", Error: "请输入令牌。"})
		return
	}
	p, err := d.check(r.Context(), secret)
	if err != nil {
		status, msg := d.refusal(r, err)
		if status == http.StatusInternalServerError {
			d.render(w, status, "error.html", errorPage{Title: "系统错误", Message: msg})
			return
		}
		d.render(w, status, "signin.html", signInPage{Title: "登录", Error: msg})
		return
	}
	d.cfg.Log.InfoContext(r.Context(), "dashboard: signed in", "subject", p.Subject, "role", p.Role, "domain", p.Domain)
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: secret, Path: Prefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// signOut forgets the cookie. The token itself stays valid: revoking it is
// `wengang token revoke`.
func (d *dashboard) signOut(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		d.crossSite(w, r)
		return
	}
	clearCookie(w, r)
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (d *dashboard) crossSite(w http.ResponseWriter, r *http.Request) {
	d.cfg.Log.WarnContext(r.Context(), "dashboard: cross-site post refused", "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "referer", r.Header.Get("Referer"))
	d.render(w, http.StatusForbidden, "error.html", errorPage{Title: "请求被拒绝", Message: "请求来源无效：请从本站页面提交。"})
}

// check returns the principal of token secret when it may read the
// progress in its own domain: fault.ErrUnauthenticated for a bad token,
// fault.ErrPermissionDenied for one without the right.
func (d *dashboard) check(ctx context.Context, secret string) (access.Principal, error) {
	p, err := d.cfg.Tokens.Lookup(ctx, secret)
	if err != nil {
		return access.Principal{}, err
	}
	if err := d.cfg.Enforcer.Allow(p, Procedure, p.Domain); err != nil {
		return access.Principal{}, err
	}
	return p, nil
}

// refusal is the status and Chinese message for an error of check.
func (d *dashboard) refusal(r *http.Request, err error) (int, string) {
	switch {
	case errors.Is(err, fault.ErrUnauthenticated):
		d.cfg.Log.InfoContext(r.Context(), "dashboard: token refused", "err", err)
		return http.StatusUnauthorized, "令牌无效、已过期或已被吊销，请核对后重新输入。"
	case errors.Is(err, fault.ErrPermissionDenied):
		d.cfg.Log.InfoContext(r.Context(), "dashboard: no right to the progress", "err", err)
		return http.StatusForbidden, "该令牌的角色无权查看工作进度。"
	}
	d.cfg.Log.ErrorContext(r.Context(), "dashboard: check token", "err", err)
	return http.StatusInternalServerError, "暂时无法验证令牌，请稍后再试。"
}

func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
}

// sameOrigin reports whether a POST comes from a page of this site: its
// Origin, or without one its Referer, names the request's host. A POST
// with neither is refused: browsers send Origin on every POST.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return false
	}
	u, err := url.Parse(src)
	return err == nil && u.Host != "" && u.Host == r.Host
}

// render writes template name with data, never cached.
func (d *dashboard) render(w http.ResponseWriter, status int, name string, data any) {
	var b bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		d.cfg.Log.Error("dashboard: render", "template", name, "err", err)
		http.Error(w, "内部错误", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// yuan writes a tally's fen as yuan with two decimals and thousands
// separators ("1,234.56"), in integers only.
func yuan(fen int64) string {
	s := money.FormatYuan(fen)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return sign + b.String() + "." + frac
}

// dateText writes a date as 2022年5月31日, or — when there is none.
func dateText(d *wengangv1.Date) string {
	c, err := protoconv.ToDate(d)
	if err != nil || c == 0 {
		return "—"
	}
	return fmt.Sprintf("%d年%d月%d日", c.Year(), c.Month(), c.Day())
}

// statusText is a deadline status in Chinese.
func statusText(s wengangv1.DeadlineStatus) string {
	switch s {
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_MET:
		return "按期"
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED:
		return "逾期"
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN:
		return "进行中"
	}
	return "—"
}

// statusClass is a deadline status's CSS class.
func statusClass(s wengangv1.DeadlineStatus) string {
	switch s {
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_MET:
		return "met"
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_MISSED:
		return "missed"
	case wengangv1.DeadlineStatus_DEADLINE_STATUS_OPEN:
		return "open"
	}
	return "unknown"
}

// roleText names a role in Chinese.
func roleText(role string) string {
	switch role {
	case access.RoleCountyClerk:
		return "县级经办"
	case access.RoleCountyReviewer:
		return "县级复核"
	case access.RoleCountyAdmin:
		return "县级管理员"
	case access.RoleCityAdmin:
		return "市级管理员"
	case access.RoleCityApprover:
		return "市级审批"
	case access.RoleCityViewer:
		return "市级查看"
	case access.RoleFinance:
		return "财政"
	case access.RoleAuditor:
		return "审计"
	}
	return role
}

// domainText names a domain: 市级 for the city, a county by its name.
func domainText(names *county.Registry) func(string) string {
	return func(domain string) string {
		if domain == access.DomainCity {
			return "市级"
		}
		if n := names.Name(domain); n != "" {
			return n
		}
		return domain
	}
}
