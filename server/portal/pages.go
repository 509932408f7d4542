package portal

import (
	"bytes"
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"unicode/utf8"

	"wengang/internal/fault"
	"wengang/policy/money"
	"wengang/policy/uscc"
	"wengang/server/store"
)

// maxQuery is the longest search text taken, in characters.
const maxQuery = 64

// indexPage is the data of index.html.
type indexPage struct {
	Title  string
	Today  string
	Rounds []roundView
}

// roundView is a round on a page.
type roundView struct {
	store.PublicRound
	State       string // 公示中, 公示期满, 已拨付
	InPublicity bool
	CountyNames []string
}

func (p *portal) view(r store.PublicRound) roundView {
	today := p.cfg.Today()
	v := roundView{PublicRound: r, InPublicity: r.InPublicity(today)}
	switch {
	case r.Released:
		v.State = "已拨付"
	case v.InPublicity:
		v.State = "公示中"
	default:
		v.State = "公示期满"
	}
	for _, c := range r.Counties {
		v.CountyNames = append(v.CountyNames, p.countyName(c))
	}
	return v
}

func (p *portal) countyName(code string) string {
	if n := p.cfg.Counties.Name(code); n != "" {
		return n
	}
	return code
}

// index serves the list of rounds. Its figures take a count over every
// round's entries, so the rendered page is kept for CacheTTL; while one
// request renders it anew, the others get the previous one.
func (p *portal) index(w http.ResponseWriter, r *http.Request) {
	today, now := p.cfg.Today(), p.cfg.Now()
	p.mu.Lock()
	ix := p.indexPage
	stale := ix.body == nil || ix.today != today || now.Sub(ix.at) >= p.cfg.CacheTTL || now.Before(ix.at)
	serveOld := stale && ix.body != nil && ix.today == today && p.indexBusy
	if stale && !serveOld {
		p.indexBusy = true
	}
	p.mu.Unlock()
	if !stale || serveOld {
		p.write(w, http.StatusOK, ix.body)
		return
	}
	defer func() {
		p.mu.Lock()
		p.indexBusy = false
		p.mu.Unlock()
	}()
	rounds, err := p.cfg.Store.PublicRounds(r.Context(), today)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	page := indexPage{Title: "公示", Today: dateText(today)}
	for _, rd := range rounds {
		page.Rounds = append(page.Rounds, p.view(rd))
	}
	b, ok := p.execute(w, r, "index.html", page)
	if !ok {
		return
	}
	p.mu.Lock()
	p.indexPage = renderedIndex{body: b, at: now, today: today}
	p.mu.Unlock()
	p.write(w, http.StatusOK, b)
}

// roundPage is the data of round.html.
type roundPage struct {
	Title    string
	Round    roundView
	Query    string
	County   string
	Counties []countyOption
	Entries  []entryView
	Matched  int
	Page     int
	Pages    int
	Links    []pageLink
	Prev     string
	Next     string
	CSV      string
	Error    string
}

type countyOption struct {
	Code, Name string
	Selected   bool
}

type entryView struct {
	No         int
	Name, USCC string
	CountyName string
	Yuan       string
}

type pageLink struct {
	Number  int // 0 is a gap (…)
	URL     string
	Current bool
}

// listQuery reads ?q=, ?county= and ?page=: the query normalized like a
// USCC, the page from 1. A bad page is page 1.
func listQuery(r *http.Request) (q, county string, page int, bad string) {
	q = uscc.Normalize(r.URL.Query().Get("q"))
	if utf8.RuneCountInString(q) > maxQuery {
		return "", "", 1, "搜索内容不能超过64个字符"
	}
	county = r.URL.Query().Get("county")
	page, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	return q, county, page, ""
}

func (p *portal) round(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := p.roundList(id)
	if err != nil {
		p.roundError(w, r, err)
		return
	}
	rd, entries := c.round, c.entries
	q, cty, page, bad := listQuery(r)
	key := q + "\x00" + cty + "\x00" + strconv.Itoa(page) + "\x00" + bad
	if b, ok := c.page(key); ok {
		p.write(w, http.StatusOK, b)
		return
	}
	data := roundPage{Title: rd.Title, Round: p.view(rd), Query: q, County: cty, Error: bad,
		CSV: Prefix + "rounds/" + url.PathEscape(id) + "/list.csv"}
	for _, c := range rd.Counties {
		data.Counties = append(data.Counties, countyOption{Code: c, Name: p.countyName(c), Selected: c == cty})
	}
	// One pass counts the matches and keeps the asked page's; a page past
	// the end takes a second pass for the last page.
	keep := func(page int) (int, []store.PublicEntry) {
		from, n := (page-1)*PageSize, 0
		var window []store.PublicEntry
		for _, e := range entries {
			if (cty == "" || e.County == cty) && store.MatchEntry(e, q) {
				if n >= from && n < from+PageSize {
					window = append(window, e)
				}
				n++
			}
		}
		return n, window
	}
	var window []store.PublicEntry
	if q == "" && cty == "" {
		data.Matched = len(entries)
		from := min((page-1)*PageSize, len(entries))
		window = entries[from:min(from+PageSize, len(entries))]
	} else {
		data.Matched, window = keep(page)
	}
	data.Pages = max(1, (data.Matched+PageSize-1)/PageSize)
	data.Page = min(page, data.Pages)
	if data.Page != page {
		if q == "" && cty == "" {
			from := (data.Page - 1) * PageSize
			window = entries[from:min(from+PageSize, len(entries))]
		} else {
			_, window = keep(data.Page)
		}
	}
	from := (data.Page - 1) * PageSize
	for i, e := range window {
		data.Entries = append(data.Entries, entryView{No: from + i + 1, Name: e.Name, USCC: e.USCC,
			CountyName: p.countyName(e.County), Yuan: money.FormatYuan(e.AmountFen)})
	}
	link := func(n int) string {
		v := url.Values{}
		if q != "" {
			v.Set("q", q)
		}
		if cty != "" {
			v.Set("county", cty)
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		u := Prefix + "rounds/" + url.PathEscape(id)
		if len(v) > 0 {
			u += "?" + v.Encode()
		}
		return u
	}
	if data.Page > 1 {
		data.Prev = link(data.Page - 1)
	}
	if data.Page < data.Pages {
		data.Next = link(data.Page + 1)
	}
	last := 0
	for _, n := range pageNumbers(data.Page, data.Pages) {
		if last != 0 && n > last+1 {
			data.Links = append(data.Links, pageLink{})
		}
		data.Links = append(data.Links, pageLink{Number: n, URL: link(n), Current: n == data.Page})
		last = n
	}
	if b, ok := p.execute(w, r, "round.html", data); ok {
		c.keep(key, b)
		p.write(w, http.StatusOK, b)
	}
}

// pageNumbers returns the page links shown: the first two, the last two
// and two either side of the current page, in order.
func pageNumbers(cur, pages int) []int {
	var ns []int
	for n := 1; n <= pages; n++ {
		if n <= 2 || n > pages-2 || (n >= cur-2 && n <= cur+2) {
			ns = append(ns, n)
		}
	}
	return ns
}

// csvHeader is the CSV's header row: the list's columns.
var csvHeader = []string{"序号", "单位名称", "统一社会信用代码", "参保地", "返还金额（元）"}

// csv serves the whole list of a round as CSV, UTF-8 with a byte-order
// mark so that Excel reads the Chinese.
func (p *portal) csv(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := p.roundList(id)
	if err != nil {
		p.roundError(w, r, err)
		return
	}
	rd, entries := c.round, c.entries
	var b bytes.Buffer
	b.WriteString("\uFEFF")
	cw := csv.NewWriter(&b)
	cw.UseCRLF = true
	cw.Write(csvHeader)
	for i, e := range entries {
		cw.Write([]string{strconv.Itoa(i + 1), e.Name, e.USCC, p.countyName(e.County), money.FormatYuan(e.AmountFen)})
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+rd.ID+`.csv"; filename*=UTF-8''`+url.PathEscape(rd.ID+" 公示名单.csv"))
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

func (p *portal) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(p.css)
}

// errorPage is the data of error.html.
type errorPage struct {
	Title   string
	Message string
}

// roundError answers a failure to read a round: 404 when it is not public.
func (p *portal) roundError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, fault.ErrNotFound) {
		p.fail(w, r, http.StatusNotFound, "没有这个公示批次，或尚未开始公示。")
		return
	}
	p.internal(w, r, err)
}

func (p *portal) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.cfg.Log.ErrorContext(r.Context(), "portal", "path", r.URL.Path, "err", err)
	p.fail(w, r, http.StatusInternalServerError, "系统繁忙，请稍后再试。")
}

func (p *portal) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	p.render(w, r, status, "error.html", errorPage{Title: "出错了", Message: msg})
}

// render executes template name and sends the page with status.
func (p *portal) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	if b, ok := p.execute(w, r, name, data); ok {
		p.write(w, status, b)
	}
}

// execute executes template name into a buffer first, so that a template
// failure never sends half a page; on failure it answers 500 itself.
func (p *portal) execute(w http.ResponseWriter, r *http.Request, name string, data any) ([]byte, bool) {
	var b bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		p.cfg.Log.ErrorContext(r.Context(), "portal: render", "template", name, "err", err)
		http.Error(w, "系统繁忙，请稍后再试。", http.StatusInternalServerError)
		return nil, false
	}
	return b.Bytes(), true
}

// write sends an HTML page.
func (p *portal) write(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
