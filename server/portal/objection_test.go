package portal_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

// poForm fetches the objection form of round id and returns its token.
func poForm(t *testing.T, p *poPortal, id string) string {
	t.Helper()
	_, body := poGet(t, p.URL, "/portal/rounds/"+id+"/objection")
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no token on the form of %s", id)
	}
	return m[1]
}

// poPost posts form to the objection URL of round id with the headers.
func poPost(t *testing.T, p *poPortal, id string, form url.Values, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", p.URL+"/portal/rounds/"+id+"/objection", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var receiptRE = regexp.MustCompile(`受理编号：<strong class="code">([^<]+)</strong>`)

func TestObjectionForm(t *testing.T) {
	p := poStart(t)
	target := p.Entries["R2022-0002"][10]
	good := func(tok string) url.Values {
		return url.Values{"token": {tok}, "uscc": {strings.ToLower(target.USCC)}, "contact_name": {"张三"},
			"contact_phone": {"0635-1234567"}, "text": {"该单位已停业，不应享受返还。"}}
	}
	for _, tc := range []struct {
		name   string
		edit   func(url.Values)
		header map[string]string
		status int
		want   []string
	}{
		{name: "everything missing", edit: func(v url.Values) { v.Del("uscc"); v.Del("contact_name"); v.Del("contact_phone"); v.Del("text") },
			status: 422, want: []string{"请填写统一社会信用代码", "请填写联系人姓名或单位", "请填写联系电话", "请填写异议内容"}},
		{name: "bad USCC and phone", edit: func(v url.Values) { v.Set("uscc", "123"); v.Set("contact_phone", "call me") },
			status: 422, want: []string{"统一社会信用代码应为18位数字或大写字母", "联系电话格式不正确", `value="张三"`}},
		{name: "text too long", edit: func(v url.Values) { v.Set("text", strings.Repeat("异", 2001)) },
			status: 422, want: []string{"异议内容不能超过2000个字符（现有2001个）"}},
		{name: "not in the round", edit: func(v url.Values) { v.Set("uscc", p.Entries["R2022-0001"][0].USCC) },
			status: 422, want: []string{"该统一社会信用代码不在本批次公示名单中"}},
		{name: "no token", edit: func(v url.Values) { v.Del("token") }, status: 403, want: []string{"表单已过期或来源无效"}},
		{name: "forged token", edit: func(v url.Values) { v.Set("token", "key9999.1652148000.AAAA") }, status: 403, want: []string{"表单已过期或来源无效"}},
		{name: "cross-site post", header: map[string]string{"Origin": "http://evil.example"}, status: 403, want: []string{"表单已过期或来源无效"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := good(poForm(t, p, "R2022-0002"))
			if tc.edit != nil {
				tc.edit(v)
			}
			status, body := poPost(t, p, "R2022-0002", v, tc.header)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if receiptRE.MatchString(body) {
				t.Error("a receipt for a refused objection")
			}
		})
	}
	var n int
	p.DB.QueryRow(context.Background(), `SELECT count(*) FROM objection`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d objections recorded by refused forms", n)
	}

	t.Run("success, and a double submit gives the first receipt", func(t *testing.T) {
		tok := poForm(t, p, "R2022-0002")
		status, body := poPost(t, p, "R2022-0002", good(tok), map[string]string{"Origin": p.URL})
		m := receiptRE.FindStringSubmatch(body)
		if status != 200 || m == nil {
			t.Fatalf("status %d, receipt %v:\n%s", status, m, body)
		}
		if !strings.Contains(body, "2022年5月10日 10:00") || !strings.Contains(body, target.USCC) {
			t.Errorf("receipt lacks the time or the USCC:\n%s", body)
		}
		_, again := poPost(t, p, "R2022-0002", good(tok), nil)
		if m2 := receiptRE.FindStringSubmatch(again); m2 == nil || m2[1] != m[1] {
			t.Errorf("double submit: receipt %v, want %s", m2, m[1])
		}
		var state, channel, phone string
		if err := p.DB.QueryRow(context.Background(), `SELECT o.state, o.channel, o.contact_phone FROM objection o WHERE o.id = $1`, m[1]).Scan(&state, &channel, &phone); err != nil {
			t.Fatal(err)
		}
		if state != "open" || channel != "portal" || phone != "0635-1234567" {
			t.Errorf("objection %s: %s %s %s", m[1], state, channel, phone)
		}
		// An objected enterprise stays on the list (the cache may hold the
		// list for a few seconds; the entry is there either way).
		_, list := poGet(t, p.URL, "/portal/rounds/R2022-0002?q="+target.USCC)
		if len(rowRE.FindAllString(list, -1)) != 1 {
			t.Error("the objected enterprise left the list")
		}
		// The contact's phone is never shown.
		_, page := poGet(t, p.URL, "/portal/rounds/R2022-0002")
		if strings.Contains(page, "0635-1234567") {
			t.Error("the list shows the objector's phone")
		}
	})
	t.Run("ended round takes none", func(t *testing.T) {
		_, body := poGet(t, p.URL, "/portal/rounds/R2022-0001/objection")
		if tokenRE.MatchString(body) || !strings.Contains(body, "不再受理网上异议") {
			t.Errorf("the form of an ended round:\n%s", body)
		}
		status, body := poPost(t, p, "R2022-0001", good(poForm(t, p, "R2022-0002")), nil)
		if status != 403 {
			t.Errorf("a token of another round: %d, want 403", status)
		}
		_ = body
	})
}
