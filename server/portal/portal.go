// Package portal is the bureau's public publicity site (公示): server-rendered
// HTML in Chinese, no login and no JavaScript, mounted at /portal/ on the
// city's port. It lists the rounds shown to the public, each round's
// enterprises (name, USCC, county, amount; never anything of an account)
// with search, county filter, pages and a CSV download, and takes
// objections (异议) through a form guarded against cross-site posts.
//
// It reads through server/store only. A round's list is read whole once
// and kept for Config.CacheTTL (with the pages rendered from it), and so is
// the rendered index, so that paging a 50,000-enterprise list costs no
// query per page; when the TTL has passed the old list is still served
// while one background read replaces it. An upheld objection therefore
// shows on the site about CacheTTL after it is recorded.
package portal

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"wengang/policy/civil"
	"wengang/policy/county"
	"wengang/policy/money"
	"wengang/server/store"
)

//go:embed templates/*.html templates/portal.css
var files embed.FS

// Prefix is the path the portal is mounted at.
const Prefix = "/portal/"

// PageSize is the number of enterprises on one page of a list.
const PageSize = 50

// Config configures the portal.
type Config struct {
	Store *store.Store
	// Today is the business date: rounds show from their start date.
	Today func() civil.Date
	Now   func() time.Time // the clock: objection receipts, form tokens
	Log   *slog.Logger
	// Counties names the counties; default: Liaocheng's.
	Counties *county.Registry
	// Secret signs the objection form's tokens; default: 32 random bytes
	// (tokens then do not survive a restart).
	Secret []byte
	// NewKey returns a fresh idempotency key for each form; default:
	// 16 random bytes in hex. Tests fix it for golden pages.
	NewKey func() string
	// CacheTTL is how long a round and its list are reused; default 5s.
	CacheTTL time.Duration
}

// portal is the handler.
type portal struct {
	cfg       Config
	tmpl      *template.Template
	css       []byte
	mux       *http.ServeMux
	mu        sync.Mutex         // guards cache, indexPage and indexBusy
	cache     map[string]*cached // by round id
	indexPage renderedIndex
	indexBusy bool // a request is rendering the index anew
}

// cached is one round and its whole list as read at a time, and the pages
// rendered from it.
type cached struct {
	ready   chan struct{} // closed once read
	err     error
	round   store.PublicRound
	entries []store.PublicEntry
	at      time.Time
	today   civil.Date

	mu         sync.Mutex
	pages      map[string][]byte // rendered list pages by query, county and page
	refreshing bool
}

// renderedIndex is the index page as rendered at a time.
type renderedIndex struct {
	body  []byte
	at    time.Time
	today civil.Date
}

// maxPages bounds the rendered pages kept per round.
const maxPages = 2048

// page returns the rendered page key, if kept.
func (c *cached) page(key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.pages[key]
	return b, ok
}

// keep keeps a rendered page, up to maxPages.
func (c *cached) keep(key string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pages) < maxPages {
		c.pages[key] = b
	}
}

// Handler returns the portal's handler, serving paths under Prefix. It
// panics when cfg has no Store (a wiring mistake); everything else has a
// default.
func Handler(cfg Config) http.Handler {
	if cfg.Store == nil {
		panic("portal: Config.Store is nil")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Today == nil {
		cfg.Today = func() civil.Date { return civil.DateOf(cfg.Now()) }
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Counties == nil {
		cfg.Counties = county.NewRegistry(county.Liaocheng())
	}
	if cfg.Secret == nil {
		cfg.Secret = make([]byte, 32)
		rand.Read(cfg.Secret)
	}
	if cfg.NewKey == nil {
		cfg.NewKey = func() string {
			b := make([]byte, 16)
			rand.Read(b)
			return hex.EncodeToString(b)
		}
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Second
	}
	p := &portal{cfg: cfg, cache: make(map[string]*cached)}
	css, err := files.ReadFile("templates/portal.css")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	p.css = css
	p.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"yuan":   money.FormatYuan,
		"county": cfg.Counties.Name,
		"date":   dateText,
	}).ParseFS(files, "templates/*.html"))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"{$}", p.index)
	mux.HandleFunc("GET "+Prefix+"portal.css", p.style)
	mux.HandleFunc("GET "+Prefix+"rounds/{id}", p.round)
	mux.HandleFunc("GET "+Prefix+"rounds/{id}/list.csv", p.csv)
	mux.HandleFunc("GET "+Prefix+"rounds/{id}/objection", p.objectionForm)
	mux.HandleFunc("POST "+Prefix+"rounds/{id}/objection", p.objectionPost)
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, http.StatusNotFound, "页面不存在 (page not found)")
	})
	p.mux = mux
	return p
}

// ServeHTTP serves the portal.
func (p *portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "same-origin")
	p.mux.ServeHTTP(w, r)
}

// roundList returns round id as shown today and its whole list. A list
// younger than CacheTTL is reused; an older one is still served while one
// reader refreshes it in the background, so that no request waits for a
// 50,000-row read once a round has been read. The first read of a round
// (or of a new business date) is waited for, by one query for all readers.
func (p *portal) roundList(id string) (*cached, error) {
	today, now := p.cfg.Today(), p.cfg.Now()
	p.mu.Lock()
	c := p.cache[id]
	fresh := c == nil || c.today != today
	if fresh {
		c = p.load(id, today, now)
	}
	p.mu.Unlock()
	<-c.ready
	if c.err != nil {
		return nil, c.err
	}
	if !fresh && (now.Sub(c.at) >= p.cfg.CacheTTL || now.Before(c.at)) {
		c.mu.Lock()
		start := !c.refreshing
		c.refreshing = true
		c.mu.Unlock()
		if start {
			go func() {
				p.mu.Lock()
				n := p.load(id, today, now)
				p.mu.Unlock()
				<-n.ready
				if n.err != nil {
					p.cfg.Log.Warn("portal: refresh round", "round", id, "err", n.err)
				}
			}()
		}
	}
	return c, nil
}

// load starts reading round id into a new cache entry, which replaces the
// current one when the read succeeds (a failed read removes a fresh entry
// and leaves a stale one to be served). p.mu is held.
func (p *portal) load(id string, today civil.Date, now time.Time) *cached {
	n := &cached{ready: make(chan struct{}), at: now, today: today, pages: make(map[string][]byte)}
	old := p.cache[id]
	if old == nil || old.today != today {
		p.cache[id] = n // the first read: readers wait for it
	}
	if len(p.cache) > 256 { // ids come from the public: bound the map
		for k, v := range p.cache {
			if k != id && now.Sub(v.at) >= p.cfg.CacheTTL {
				delete(p.cache, k)
			}
		}
	}
	go func() {
		defer close(n.ready)
		ctx := context.Background()
		n.round, n.err = p.cfg.Store.PublicRound(ctx, id, today)
		if n.err == nil {
			n.entries, n.err = p.cfg.Store.PublicEntries(ctx, id)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		switch {
		case n.err == nil:
			p.cache[id] = n
		case p.cache[id] == n:
			delete(p.cache, id) // never keep a failure
		case old != nil:
			old.mu.Lock()
			old.refreshing = false // let a later reader try again
			old.mu.Unlock()
		}
	}()
	return n
}

// dateText writes d as 2022年5月9日.
func dateText(d civil.Date) string {
	if d == 0 {
		return ""
	}
	return strconv.Itoa(d.Year()) + "年" + strconv.Itoa(d.Month()) + "月" + strconv.Itoa(d.Day()) + "日"
}
