package portal_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"wengang/internal/loadtest"
	"wengang/internal/pgtest"
	"wengang/policy/civil"
	"wengang/server/portal"
	"wengang/server/store"
)

var update = flag.Bool("update", false, "rewrite testdata (golden pages, the screenshot)")

// poNow is the clock of the tests: 2022-05-10 10:00 in Shanghai, during
// round R2022-0002's publicity.
var poNow = time.Date(2022, 5, 10, 2, 0, 0, 0, time.UTC)

const poToday civil.Date = 20220510

// poPortal is a portal on a fresh database with its rounds, served on a
// loopback port.
type poPortal struct {
	URL     string
	DB      *pgxpool.Pool
	Store   *store.Store
	Entries map[string][]loadtest.Entry // by round
}

// poRounds are the rounds of poStart: a released one, one in publicity
// with 120 enterprises in two counties (one removed, one objected), a
// draft and one that starts later.
func poRounds() ([]loadtest.Round, map[string][]loadtest.Entry) {
	rounds := []loadtest.Round{
		{ID: "R2022-0001", Title: "2022年第一批普惠性服务业失业保险稳岗返还公示", Start: 20220420, End: 20220426, State: "released", Address: "聊城市东昌府区柳园南路1号"},
		{ID: "R2022-0002", Title: "2022年第二批普惠性服务业失业保险稳岗返还公示", Start: 20220509, End: 20220513, Address: "聊城市东昌府区柳园南路1号"},
		{ID: "R2022-0003", Title: "草稿批次", Start: 20220501, End: 20220506, State: "draft"},
		{ID: "R2022-0004", Title: "将来批次", Start: 20220601, End: 20220607},
	}
	es := map[string][]loadtest.Entry{}
	for i, r := range rounds {
		var e []loadtest.Entry
		if r.ID == "R2022-0002" {
			e = loadtest.Entries(120, []string{"371502", "371521"})
			e[7].Removed = true
			e[8].State = "objected"
		} else {
			for _, x := range loadtest.Entries(3+i, []string{"371522"}) {
				x.USCC = loadtest.USCC("371522", 900+i*10+len(e))
				e = append(e, x)
			}
		}
		es[r.ID] = e
	}
	return rounds, es
}

func poStart(t *testing.T) *poPortal {
	t.Helper()
	db := pgtest.NewDB(t, store.Migrations)
	rounds, es := poRounds()
	for _, r := range rounds {
		if err := loadtest.Seed(context.Background(), db, r, es[r.ID]); err != nil {
			t.Fatal(err)
		}
	}
	st := store.New(db)
	n := 0
	h := portal.Handler(portal.Config{
		Store: st, Today: func() civil.Date { return poToday }, Now: func() time.Time { return poNow },
		Secret: []byte("test secret"),
		NewKey: func() string { n++; return fmt.Sprintf("key%04d", n) },
	})
	mux := http.NewServeMux()
	mux.Handle(portal.Prefix, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &poPortal{URL: srv.URL, DB: db, Store: st, Entries: es}
}

// poGet fetches path and returns the status and body.
func poGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func poGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", name, got)
	}
}

func TestGoldenPages(t *testing.T) {
	p := poStart(t)
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"index.html", "/portal/", 200},
		{"round.html", "/portal/rounds/R2022-0002", 200},
		{"round-search.html", "/portal/rounds/R2022-0002?q=%E8%BF%90%E6%B2%B3&county=371521", 200},
		{"round-released.html", "/portal/rounds/R2022-0001", 200},
		{"objection.html", "/portal/rounds/R2022-0002/objection", 200},
		{"objection-ended.html", "/portal/rounds/R2022-0001/objection", 200},
		{"notfound.html", "/portal/rounds/R2022-0003", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := poGet(t, p.URL, tc.path)
			if status != tc.status {
				t.Fatalf("GET %s = %d, want %d", tc.path, status, tc.status)
			}
			poGolden(t, tc.name, body)
		})
	}
}

// rowRE matches one row of a list: its number, name, USCC, county, amount.
var rowRE = regexp.MustCompile(`<tr><td class="num">(\d+)</td><td>([^<]*)</td><td class="code">([0-9A-Z]{18})</td><td>([^<]*)</td><td class="num">([0-9.]+)</td></tr>`)

func TestListing(t *testing.T) {
	p := poStart(t)
	all := p.Entries["R2022-0002"]
	for _, tc := range []struct {
		name      string
		path      string
		status    int
		rows      int
		contains  []string
		excludes  []string
		firstUSCC string
	}{
		{name: "page 1 of 3", path: "/portal/rounds/R2022-0002", status: 200, rows: 50,
			contains: []string{"共 119 家单位，第 1/3 页", `href="/portal/rounds/R2022-0002?page=2" rel="next"`, "公示期：2022年5月9日至2022年5月13日", "0635-8888888", "市人社局失业保险科", "聊城市东昌府区柳园南路1号"}},
		{name: "last page", path: "/portal/rounds/R2022-0002?page=3", status: 200, rows: 19, contains: []string{"第 3/3 页", `rel="prev"`}, excludes: []string{`rel="next"`}},
		{name: "page past the end is the last", path: "/portal/rounds/R2022-0002?page=99", status: 200, rows: 19},
		{name: "removed entry not listed", path: "/portal/rounds/R2022-0002?q=" + all[7].USCC, status: 200, rows: 0, contains: []string{"没有符合条件的单位"}},
		{name: "objected entry still listed", path: "/portal/rounds/R2022-0002?q=" + all[8].USCC, status: 200, rows: 1, firstUSCC: all[8].USCC},
		{name: "USCC prefix, full-width and lower case", path: "/portal/rounds/R2022-0002?q=" + url.QueryEscape("９１３７１５２１"), status: 200, rows: 50, contains: []string{"查询到 59 家单位"}},
		{name: "name", path: "/portal/rounds/R2022-0002?q=" + url.QueryEscape("第42分公司"), status: 200, rows: 1, firstUSCC: all[41].USCC},
		{name: "county filter", path: "/portal/rounds/R2022-0002?county=371502", status: 200, rows: 50, contains: []string{"查询到 60 家单位", "<option value=\"371502\" selected>东昌府区</option>"}, excludes: []string{"阳谷县</td>"}},
		{name: "query too long", path: "/portal/rounds/R2022-0002?q=" + strings.Repeat("长", 65), status: 200, rows: 50, contains: []string{"搜索内容不能超过64个字符"}},
		{name: "released round", path: "/portal/rounds/R2022-0001", status: 200, rows: 3, contains: []string{"已拨付"}},
		{name: "draft never shown", path: "/portal/rounds/R2022-0003", status: 404},
		{name: "not started", path: "/portal/rounds/R2022-0004", status: 404},
		{name: "no such round", path: "/portal/rounds/nope", status: 404},
		{name: "no such page", path: "/portal/nope", status: 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := poGet(t, p.URL, tc.path)
			if status != tc.status {
				t.Fatalf("GET %s = %d, want %d", tc.path, status, tc.status)
			}
			if status != 200 {
				return
			}
			rows := rowRE.FindAllStringSubmatch(body, -1)
			if len(rows) != tc.rows {
				t.Errorf("%d rows, want %d", len(rows), tc.rows)
			}
			if tc.firstUSCC != "" && len(rows) > 0 && rows[0][3] != tc.firstUSCC {
				t.Errorf("first row %s, want %s", rows[0][3], tc.firstUSCC)
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.excludes {
				if strings.Contains(body, s) {
					t.Errorf("page has %q", s)
				}
			}
		})
	}
	t.Run("index lists shown rounds only, newest first", func(t *testing.T) {
		_, body := poGet(t, p.URL, "/portal/")
		i2, i1 := strings.Index(body, "R2022-0002"), strings.Index(body, "R2022-0001")
		if i2 < 0 || i1 < 0 || i2 > i1 {
			t.Errorf("rounds 0002 at %d and 0001 at %d: want both, 0002 first", i2, i1)
		}
		for _, hidden := range []string{"R2022-0003", "R2022-0004", "草稿批次", "将来批次"} {
			if strings.Contains(body, hidden) {
				t.Errorf("index shows %s", hidden)
			}
		}
	})
	t.Run("order by county then name; amounts in yuan", func(t *testing.T) {
		var got [][]string
		for page := 1; page <= 3; page++ {
			_, body := poGet(t, p.URL, fmt.Sprintf("/portal/rounds/R2022-0002?page=%d", page))
			got = append(got, rowRE.FindAllStringSubmatch(body, -1)...)
		}
		es, err := p.Store.PublicEntries(context.Background(), "R2022-0002")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(es) || len(es) != 119 {
			t.Fatalf("%d rows over the pages, %d listed; want 119", len(got), len(es))
		}
		for i, e := range es {
			if got[i][3] != e.USCC || got[i][2] != e.Name {
				t.Fatalf("row %d: %s %s, want %s %s", i+1, got[i][3], got[i][2], e.USCC, e.Name)
			}
			if i > 0 && (es[i-1].County > e.County || es[i-1].County == e.County && es[i-1].Name > e.Name) {
				t.Fatalf("row %d out of order", i+1)
			}
			want := fmt.Sprintf("%d.%02d", e.AmountFen/100, e.AmountFen%100)
			if got[i][5] != want {
				t.Fatalf("row %d amount %s, want %s", i+1, got[i][5], want)
			}
		}
	})
}

func TestCSV(t *testing.T) {
	p := poStart(t)
	resp, err := http.Get(p.URL + "/portal/rounds/R2022-0002/list.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.HasPrefix(b, []byte("\xEF\xBB\xBF")) {
		t.Fatalf("no UTF-8 byte-order mark: % x", b[:min(8, len(b))])
	}
	recs, err := csv.NewReader(bytes.NewReader(b[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "序号,单位名称,统一社会信用代码,参保地,返还金额（元）" {
		t.Errorf("header %q", recs[0])
	}
	es, _ := p.Store.PublicEntries(context.Background(), "R2022-0002")
	if len(recs)-1 != len(es) {
		t.Fatalf("%d rows, want %d", len(recs)-1, len(es))
	}
	want := map[string]string{"371502": "东昌府区", "371521": "阳谷县"}
	for i, e := range es {
		r := recs[i+1]
		if r[1] != e.Name || r[2] != e.USCC || r[3] != want[e.County] || r[4] != fmt.Sprintf("%d.%02d", e.AmountFen/100, e.AmountFen%100) {
			t.Fatalf("row %d = %q, want %v", i+1, r, e)
		}
	}
	if status, _ := poGet(t, p.URL, "/portal/rounds/R2022-0003/list.csv"); status != 404 {
		t.Errorf("CSV of a draft: %d, want 404", status)
	}
}

// TestNoAccountNumber renders every page and CSV of every round whose
// items carry account numbers, and the forms, and finds none of them.
func TestNoAccountNumber(t *testing.T) {
	p := poStart(t)
	var accounts []string
	for _, es := range p.Entries {
		for _, e := range es {
			accounts = append(accounts, loadtest.AccountNo(e.USCC))
		}
	}
	var stored int
	if err := p.DB.QueryRow(context.Background(), `SELECT count(*) FROM received_item WHERE payee_account_no <> ''`).Scan(&stored); err != nil || stored != len(accounts) {
		t.Fatalf("items with accounts: %d, %v; want %d", stored, err, len(accounts))
	}
	paths := []string{"/portal/", "/portal/portal.css"}
	for _, id := range []string{"R2022-0001", "R2022-0002"} {
		base := "/portal/rounds/" + id
		paths = append(paths, base+"/list.csv", base+"/objection", base+"?county=371502", base+"?q=91")
		for page := 1; page <= 3; page++ {
			paths = append(paths, fmt.Sprintf("%s?page=%d", base, page))
		}
		for _, e := range p.Entries[id] {
			paths = append(paths, base+"?q="+e.USCC)
		}
	}
	for _, path := range paths {
		_, body := poGet(t, p.URL, path)
		for _, a := range accounts {
			if strings.Contains(body, a) || strings.Contains(body, a[len(a)-8:]) {
				t.Fatalf("%s shows account number %s", path, a)
			}
		}
		if strings.Contains(body, "6222") {
			t.Fatalf("%s shows something like an account number", path)
		}
	}
}

// TestRemovalShows checks that an enterprise removed by an upheld
// objection leaves the list once the cached list is older than CacheTTL:
// the stale list is served while it is read again, never for long.
func TestRemovalShows(t *testing.T) {
	db := pgtest.NewDB(t, store.Migrations)
	rounds, es := poRounds()
	if err := loadtest.Seed(context.Background(), db, rounds[1], es[rounds[1].ID]); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		now = poNow
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mux := http.NewServeMux()
	mux.Handle(portal.Prefix, portal.Handler(portal.Config{Store: store.New(db), Today: func() civil.Date { return poToday },
		Now: clock, CacheTTL: time.Minute}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	target := es[rounds[1].ID][20]
	path := "/portal/rounds/R2022-0002?q=" + target.USCC
	listed := func() int {
		_, body := poGet(t, srv.URL, path)
		return len(rowRE.FindAllString(body, -1))
	}
	if n := listed(); n != 1 {
		t.Fatalf("listed %d times before removal", n)
	}
	if _, err := db.Exec(context.Background(), `UPDATE round_entry SET removed = true WHERE uscc = $1`, target.USCC); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 1 {
		t.Fatalf("a list younger than CacheTTL was read again")
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for listed() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the removed enterprise is still listed after a refresh")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, body := poGet(t, srv.URL, "/portal/rounds/R2022-0002"); !strings.Contains(body, "共 118 家单位") {
		t.Error("the count did not follow the removal")
	}
}
