package portal

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"wengang/internal/fault"
	"wengang/policy/uscc"
	"wengang/server/store"
)

// formTTL is how long an objection form may be submitted after it was
// served.
const formTTL = 4 * time.Hour

// objectionPage is the data of objection.html: the form, with what was
// typed and what is wrong with it, or the receipt.
type objectionPage struct {
	Title   string
	Round   roundView
	Token   string
	USCC    string
	Name    string
	Phone   string
	Text    string
	Errors  map[string]string // by field: uscc, name, phone, text, form
	Receipt *receipt
}

type receipt struct {
	ID         string
	ReceivedAt string
	USCC       string
}

// token returns a form token for round id: the idempotency key of this
// form, the time it was served and an HMAC of both with the round.
func (p *portal) token(id, key string, at time.Time) string {
	ts := strconv.FormatInt(at.Unix(), 10)
	return key + "." + ts + "." + p.mac(id, key, ts)
}

func (p *portal) mac(id, key, ts string) string {
	m := hmac.New(sha256.New, p.cfg.Secret)
	m.Write([]byte(id + "\x00" + key + "\x00" + ts))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkToken returns the idempotency key of a token this portal served for
// round id less than formTTL ago.
func (p *portal) checkToken(id, tok string) (string, bool) {
	key, rest, ok := strings.Cut(tok, ".")
	if !ok || key == "" {
		return "", false
	}
	ts, sum, ok := strings.Cut(rest, ".")
	if !ok || !hmac.Equal([]byte(sum), []byte(p.mac(id, key, ts))) {
		return "", false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", false
	}
	age := p.cfg.Now().Sub(time.Unix(sec, 0))
	return key, age >= -time.Minute && age < formTTL
}

// sameOrigin reports whether a POST comes from a page of this site: its
// Origin (or, without one, its Referer) names the request's host. Browsers
// send Origin on every cross-site POST; a request without either is not a
// browser's cross-site one and is left to the token.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

func (p *portal) openRound(w http.ResponseWriter, r *http.Request) (roundView, bool) {
	rd, err := p.cfg.Store.PublicRound(r.Context(), r.PathValue("id"), p.cfg.Today())
	if err != nil {
		p.roundError(w, r, err)
		return roundView{}, false
	}
	return p.view(rd), true
}

func (p *portal) objectionForm(w http.ResponseWriter, r *http.Request) {
	v, ok := p.openRound(w, r)
	if !ok {
		return
	}
	page := objectionPage{Title: "异议反映", Round: v, USCC: uscc.Normalize(r.URL.Query().Get("uscc"))}
	if v.InPublicity {
		page.Token = p.token(v.ID, p.cfg.NewKey(), p.cfg.Now())
	}
	p.render(w, r, http.StatusOK, "objection.html", page)
}

// Form limits, in characters.
const (
	maxName  = 50
	maxPhone = 20
	maxText  = 2000
)

// validPhone reports whether s looks like a phone number: 7 to 20 digits,
// with "-", "+", spaces or parentheses between.
func validPhone(s string) bool {
	digits := 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case strings.ContainsRune("-+ ()", c):
		default:
			return false
		}
	}
	return digits >= 7 && digits <= 20
}

func (p *portal) objectionPost(w http.ResponseWriter, r *http.Request) {
	v, ok := p.openRound(w, r)
	if !ok {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, http.StatusBadRequest, "表单内容过长或格式错误。")
		return
	}
	f := r.PostForm
	page := objectionPage{Title: "异议反映", Round: v, Errors: map[string]string{},
		USCC: uscc.Normalize(f.Get("uscc")), Name: strings.TrimSpace(f.Get("contact_name")),
		Phone: strings.TrimSpace(f.Get("contact_phone")), Text: strings.TrimSpace(f.Get("text"))}
	key, tokOK := p.checkToken(v.ID, f.Get("token"))
	if !sameOrigin(r) || !tokOK {
		page.Errors["form"] = "表单已过期或来源无效，请重新打开异议表单后提交。"
		w.Header().Set("Cache-Control", "no-store")
		page.Token = p.token(v.ID, p.cfg.NewKey(), p.cfg.Now())
		p.render(w, r, http.StatusForbidden, "objection.html", page)
		return
	}
	if !v.InPublicity {
		page.Errors["form"] = "本批次不在公示期内，不再受理异议。"
		p.render(w, r, http.StatusConflict, "objection.html", page)
		return
	}
	if page.USCC == "" {
		page.Errors["uscc"] = "请填写统一社会信用代码。"
	} else if _, err := uscc.Check(page.USCC); err != nil {
		page.Errors["uscc"] = "统一社会信用代码应为18位数字或大写字母。"
	}
	switch n := utf8.RuneCountInString(page.Name); {
	case n == 0:
		page.Errors["name"] = "请填写联系人姓名或单位。"
	case n > maxName:
		page.Errors["name"] = "联系人不能超过50个字符。"
	}
	switch {
	case page.Phone == "":
		page.Errors["phone"] = "请填写联系电话。"
	case utf8.RuneCountInString(page.Phone) > maxPhone || !validPhone(page.Phone):
		page.Errors["phone"] = "联系电话格式不正确（7至20位数字）。"
	}
	switch n := utf8.RuneCountInString(page.Text); {
	case n == 0:
		page.Errors["text"] = "请填写异议内容。"
	case n > maxText:
		page.Errors["text"] = "异议内容不能超过2000个字符（现有" + strconv.Itoa(n) + "个）。"
	}
	if len(page.Errors) > 0 {
		page.Token = f.Get("token")
		p.render(w, r, http.StatusUnprocessableEntity, "objection.html", page)
		return
	}
	o, err := p.cfg.Store.RecordObjection(r.Context(), store.NewObjection{
		RoundID: v.ID, USCC: page.USCC, ContactName: page.Name, ContactPhone: page.Phone, Text: page.Text,
		Channel: "portal", RecordedBy: "portal", ReceivedAt: p.cfg.Now(), IdempotencyKey: "portal-" + key,
		Today: p.cfg.Today(),
	})
	switch {
	case err == nil:
	case errors.Is(err, fault.ErrNotFound):
		page.Errors["uscc"] = "该统一社会信用代码不在本批次公示名单中。"
	case errors.Is(err, fault.ErrFailedPrecondition):
		page.Errors["form"] = "本批次不在公示期内，或该单位已不在公示名单中，不再受理异议。"
	case errors.Is(err, fault.ErrConflict):
		page.Errors["form"] = "此表单已提交过其他异议，请重新打开异议表单。"
	default:
		p.internal(w, r, err)
		return
	}
	if len(page.Errors) > 0 {
		page.Token = f.Get("token")
		p.render(w, r, http.StatusUnprocessableEntity, "objection.html", page)
		return
	}
	page.Receipt = &receipt{ID: o.ID, USCC: page.USCC, ReceivedAt: o.ReceivedAt.In(shanghai).Format("2006年1月2日 15:04")}
	p.render(w, r, http.StatusOK, "objection.html", page)
}

// shanghai is China Standard Time, which has no daylight saving.
var shanghai = time.FixedZone("CST", 8*3600)
