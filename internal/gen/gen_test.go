package gen

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"

	"wengang/internal/fault"
	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/policy/uscc"
)

var asOf = civil.MustDate(2022, 4, 28)

func config(units int, seed int64, counties ...string) Config {
	if len(counties) == 0 {
		counties = []string{"371502", "371521"}
	}
	return Config{Counties: counties, Units: units, Seed: seed, PolicyYear: 2021, AsOf: asOf}
}

func mustGenerate(t testing.TB, cfg Config) *refund.Dataset {
	t.Helper()
	ds, err := Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func TestGenerateIsDeterministic(t *testing.T) {
	t.Parallel()
	a := mustGenerate(t, config(500, 7))
	b := mustGenerate(t, config(500, 7))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same config gave different datasets")
	}
	c := mustGenerate(t, config(500, 8))
	if reflect.DeepEqual(a.Units, c.Units) || reflect.DeepEqual(a.Contributions, c.Contributions) {
		t.Fatal("different seeds gave the same dataset")
	}
}

func TestCountiesAreIndependent(t *testing.T) {
	t.Parallel()
	both := mustGenerate(t, config(300, 3, "371521", "371502"))
	one := mustGenerate(t, config(300, 3, "371502"))
	var fromBoth []refund.Unit
	for _, u := range both.Units {
		if u.County == "371502" {
			fromBoth = append(fromBoth, u)
		}
	}
	if !reflect.DeepEqual(fromBoth, one.Units) {
		t.Fatal("371502's units depend on the other counties generated with it")
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	t.Parallel()
	ds, err := Generate(Config{Counties: []string{"371523"}, Units: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range ds.Units {
		if u.County != "371503" {
			t.Fatalf("legacy county 371523 generated county %q, want 371503", u.County)
		}
	}
	last := civil.Month(0)
	for _, c := range ds.Contributions {
		last = max(last, c.Period)
	}
	if last != 202203 {
		t.Errorf("default as-of: last period %v, want 2022-03", last)
	}

	for name, cfg := range map[string]Config{
		"no county":         {Units: 1},
		"county not digits": {Counties: []string{"37150A"}, Units: 1},
		"county twice":      {Counties: []string{"371502", "371502"}, Units: 1},
		"legacy and new":    {Counties: []string{"371503", "371523"}, Units: 1},
		"negative units":    {Counties: []string{"371502"}, Units: -1},
		"as-of in Y":        {Counties: []string{"371502"}, Units: 1, AsOf: civil.MustDate(2021, 12, 31)},
		"as-of not a date":  {Counties: []string{"371502"}, Units: 1, AsOf: 20220230},
		"policy year":       {Counties: []string{"371502"}, Units: 1, PolicyYear: 99},
	} {
		if _, err := Generate(cfg); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%s: error %v, want fault.ErrInvalid", name, err)
		}
	}
}

func TestZeroUnits(t *testing.T) {
	t.Parallel()
	ds := mustGenerate(t, config(0, 1))
	if len(ds.Units)+len(ds.Contributions)+len(ds.Accounts)+len(ds.Exclusions) != 0 {
		t.Fatalf("0 units gave %d units, %d contributions", len(ds.Units), len(ds.Contributions))
	}
}

func TestUSCCs(t *testing.T) {
	t.Parallel()
	ds := mustGenerate(t, config(10000, 11, "371502", "371503", "371571"))
	seen := make(map[string]bool)
	holds, orgBad, legacy := 0, 0, 0
	wantRegion := map[string][]string{"371502": {"371502"}, "371503": {"371503", "371523"}, "371571": {"371500"}}
	for _, u := range ds.Units {
		if seen[u.USCC] {
			t.Fatalf("USCC %s appears twice", u.USCC)
		}
		seen[u.USCC] = true
		st, err := uscc.Check(u.USCC)
		if err != nil {
			t.Fatalf("USCC %s: %v", u.USCC, err)
		}
		if st == uscc.Hold {
			holds++
		}
		if !uscc.OrgCodeValid(u.USCC) {
			orgBad++
		}
		region := u.USCC[2:8]
		if region == "371523" {
			legacy++
		}
		if !contains(wantRegion[u.County], region) {
			t.Errorf("unit of %s has region %s", u.County, region)
		}
		switch u.USCC[:2] {
		case "91", "92", "93", "52":
		default:
			t.Errorf("USCC %s: registration authority and type %s", u.USCC, u.USCC[:2])
		}
	}
	n := len(ds.Units)
	// About 0.5% of random units, plus the catalogue's few.
	if holds < n/1000 || holds > n*15/1000 {
		t.Errorf("%d of %d USCCs have a wrong check character, want about 0.5%%", holds, n)
	}
	if orgBad == 0 || orgBad > n*5/100 {
		t.Errorf("%d of %d organization codes have a wrong check digit, want a few", orgBad, n)
	}
	if legacy == 0 {
		t.Error("no 茌平区 unit carries the legacy region 371523")
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestUnitsLookReal(t *testing.T) {
	t.Parallel()
	ds := mustGenerate(t, config(5000, 5))
	sizes := make(map[refund.Size]int)
	status := make(map[refund.Status]int)
	nonService, mobiles := 0, 0
	for _, u := range ds.Units {
		if u.County != "371502" && u.County != "371521" {
			t.Fatalf("unit of county %q", u.County)
		}
		if len(u.Industry) != 4 || sectionOf(u.Industry) == 0 {
			t.Fatalf("industry %q is not a four-digit class of an existing division", u.Industry)
		}
		if !tertiaryClass(u.Industry) {
			nonService++
		}
		sizes[u.Size]++
		status[u.Status]++
		if !hasHan(u.Name) || !hasAnySuffix(u.Name, "公司", "合作社", "（个体工商户）", "学校", "幼儿园", "院",
			"中心", "所", "店", "馆", "房", "楼", "吧", "咖", "部", "社", "室", "超市", "商行") {
			t.Errorf("name %q does not look like a unit's", u.Name)
		}
		if u.USCC[1] != '2' && !strings.HasPrefix(u.Name, "聊城") && !strings.HasPrefix(u.Name, "阳谷县") &&
			!strings.HasPrefix(u.Name, "山东") && !strings.Contains(u.Name, "（聊城）") {
			t.Errorf("name %q does not say where the unit is", u.Name)
		}
		if u.Mobile != "" {
			mobiles++
			if len(u.Mobile) != 11 || u.Mobile[0] != '1' || u.Mobile[1] < '3' || strings.Trim(u.Mobile, "0123456789") != "" {
				t.Errorf("mobile %q", u.Mobile)
			}
		}
		if u.HeadcountStart < 0 || u.HeadcountEnd < 0 {
			t.Errorf("negative headcount %+v", u)
		}
		switch u.Size {
		case refund.SizeMicro:
			if u.HeadcountStart > 10 {
				t.Errorf("micro unit with N0 = %d", u.HeadcountStart)
			}
		case refund.SizeLarge:
			if u.HeadcountStart != 0 && u.HeadcountStart < 300 {
				t.Errorf("large unit with N0 = %d", u.HeadcountStart)
			}
		}
	}
	n := len(ds.Units)
	share := func(k int) int { return k * 100 / n }
	if s := share(nonService); s < 5 || s > 25 {
		t.Errorf("%d%% not in service industries, want 5-25%%", s)
	}
	if s := share(sizes[refund.SizeMicro] + sizes[refund.SizeSmall]); s < 70 {
		t.Errorf("%d%% micro or small, want most", s)
	}
	for _, sz := range []refund.Size{refund.SizeLarge, refund.SizeMedium, refund.SizeUnknown} {
		if s := sizes[sz] * 1000 / n; s < 10 || s > 150 {
			t.Errorf("%d‰ of size %q, want a few percent", s, sz)
		}
	}
	if s := share(status[refund.StatusActive]); s < 90 || status[refund.StatusDeregistered] == 0 || status[refund.StatusRevoked] == 0 {
		t.Errorf("statuses %v: want mostly active, some deregistered and revoked", status)
	}
	if s := share(mobiles); s < 80 || s == 100 {
		t.Errorf("%d%% with a mobile number, want most but not all", s)
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

func hasAnySuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

func TestContributionsLookReal(t *testing.T) {
	t.Parallel()
	cfg := config(5000, 9)
	ds := mustGenerate(t, cfg)
	known := make(map[string]bool)
	for _, u := range ds.Units {
		known[u.USCC] = true
	}
	type key struct {
		uscc   string
		period civil.Month
	}
	rowsOf := make(map[key]int)
	var unknown, afterAsOf, unpaidY, lateFees, backPaid, afterY int
	for _, c := range ds.Contributions {
		if !known[c.USCC] {
			unknown++
		}
		if c.Period < 201901 || c.Period > 202203 {
			t.Fatalf("period %v outside 2019-01..2022-03", c.Period)
		}
		if c.EmployerFen <= 0 || c.EmployeeFen <= 0 || c.LateFeeFen < 0 {
			t.Fatalf("amounts %+v", c)
		}
		// employer 0.7%, employee 0.3% of the same base
		if d := c.EmployerFen*3 - c.EmployeeFen*7; d < -10 || d > 10 {
			t.Fatalf("employer %d and employee %d are not 0.7%% and 0.3%% of one base", c.EmployerFen, c.EmployeeFen)
		}
		rowsOf[key{c.USCC, c.Period}]++
		due := lastDay(addMonths(c.Period, 1))
		switch {
		case c.PaidOn == 0:
			if c.Period.Year() == 2021 {
				unpaidY++
			}
			if c.LateFeeFen != 0 {
				t.Fatalf("unpaid row with a late fee: %+v", c)
			}
		case c.PaidOn <= day(c.Period, 1):
			t.Fatalf("paid before its period: %+v", c)
		case c.PaidOn > due && c.LateFeeFen == 0 && c.EmployerFen+c.EmployeeFen >= 2000:
			t.Fatalf("paid late without a late fee: %+v", c)
		case c.PaidOn <= due && c.LateFeeFen != 0:
			t.Fatalf("paid on time with a late fee: %+v", c)
		}
		if c.PaidOn > cfg.AsOf {
			afterAsOf++
		}
		if c.LateFeeFen > 0 {
			lateFees++
		}
		if c.Period.Year() < 2021 && c.PaidOn.Year() == 2021 && c.PaidOn.MonthOf() > addMonths(c.Period, 2) && c.LateFeeFen > 0 {
			backPaid++
		}
		if c.Period.Year() > 2021 {
			afterY++
		}
	}
	split := 0
	for _, n := range rowsOf {
		if n > 1 {
			split++
		}
	}
	n := len(ds.Contributions)
	for name, k := range map[string]int{
		"rows of unknown USCCs": unknown, "rows paid after D": afterAsOf, "unpaid rows of Y": unpaidY,
		"rows with a late fee": lateFees, "back payments of earlier years in Y": backPaid,
		"months in two rows": split, "periods after Y": afterY,
	} {
		if k == 0 {
			t.Errorf("no %s", name)
		}
	}
	if unknown*1000 > n*10 {
		t.Errorf("%d of %d rows of unknown USCCs, want about 0.2%%", unknown, n)
	}
	if lateFees*100 > n*10 {
		t.Errorf("%d of %d rows with a late fee, want mostly none", lateFees, n)
	}
	if per := n / len(ds.Units); per < 18 || per > 30 {
		t.Errorf("%d rows per unit, want about 24", per)
	}
}

// TestCatalogue checks that every catalogue case gets, under DOMAIN.md's
// rules, the decision and reasons it was made for.
func TestCatalogue(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		config(2000, 1),
		config(300, 2, "371503"),
		// D in January: no period after Y; some cases do not fit.
		{Counties: []string{"371581"}, Units: 200, Seed: 3, PolicyYear: 2021, AsOf: civil.MustDate(2022, 1, 20)},
		{Counties: []string{"371522"}, Units: 200, Seed: 4, PolicyYear: 2023, AsOf: civil.MustDate(2024, 6, 30)},
	} {
		ds, cases, err := GenerateWithCases(cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := screenRef(ds, cfg.PolicyYear, cfg.AsOf)
		names := make(map[string]int)
		for _, c := range cases {
			names[c.Name]++
			o, ok := got[c.USCC]
			if !ok {
				t.Errorf("case %q: unit %s not in units", c.Name, c.USCC)
				continue
			}
			if o.decision != c.Decision || o.reasonString() != c.Reasons || o.payee != c.Payee {
				t.Errorf("%d %v case %q (%s): got %s %q payee %q, want %s %q payee %q",
					cfg.PolicyYear, cfg.AsOf, c.Name, c.USCC, o.decision, o.reasonString(), o.payee, c.Decision, c.Reasons, c.Payee)
			}
		}
		if want := len(catalogueCases) - 1; len(names) < want-3 {
			t.Errorf("%v: %d distinct cases, want about %d", cfg.AsOf, len(names), want)
		}
		for name, n := range names {
			if n != len(cfg.Counties) {
				t.Errorf("case %q appears %d times, want once per county", name, n)
			}
		}
	}
	// A county smaller than the catalogue gets its first cases.
	_, cases, err := GenerateWithCases(config(5, 1, "371502"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 5 || cases[0].Name == "" {
		t.Fatalf("5 units: %d cases", len(cases))
	}
}

// TestMixCoversEveryReason checks that the random units alone, without the
// catalogue, meet every reason code of DOMAIN.md and every feature the
// screening must handle, and that many units are eligible.
func TestMixCoversEveryReason(t *testing.T) {
	t.Parallel()
	cfg := config(2000, 1)
	ds, cases, err := GenerateWithCases(cfg)
	if err != nil {
		t.Fatal(err)
	}
	catalogue := make(map[string]bool)
	for _, c := range cases {
		catalogue[c.USCC] = true
	}
	got := screenRef(ds, cfg.PolicyYear, cfg.AsOf)
	reasons := make(map[string]int)
	decisions := make(map[string]int)
	random := 0
	for code, o := range got {
		if catalogue[code] {
			continue
		}
		random++
		decisions[o.decision]++
		for _, r := range o.reasons {
			reasons[r]++
		}
	}
	for _, code := range []string{
		"NOT_SERVICE_INDUSTRY", "NOT_SME", "DEREGISTERED", "INSUFFICIENT_MONTHS", "ARREARS",
		"LAYOFF_RATE_EXCEEDED", "CREDIT_BLACKLIST", "ZOMBIE", "INDUSTRY_POLICY", "ENVIRONMENT",
		"NO_CONTRIBUTIONS", "USCC_CHECKSUM", "SIZE_MISSING", "ACCOUNT_MISSING",
	} {
		if reasons[code] == 0 {
			t.Errorf("no random unit gets %s", code)
		}
	}
	if s := decisions["eligible"] * 100 / random; s < 30 || s > 75 {
		t.Errorf("%d%% of random units eligible (%v), want about half", s, decisions)
	}
	if decisions["hold"] == 0 {
		t.Error("no random unit held")
	}

	// The features the screening must meet, in the random units.
	accounts := make(map[string][]refund.AccountKind)
	for _, a := range ds.Accounts {
		accounts[a.USCC] = append(accounts[a.USCC], a.Kind)
	}
	var noAccount, socialOnly, both, smallCut, boundary, largeUnit int
	for _, u := range ds.Units {
		if catalogue[u.USCC] {
			continue
		}
		switch k := accounts[u.USCC]; {
		case len(k) == 0:
			noAccount++
		case len(k) == 1 && k[0] == refund.AccountSocialInsurance:
			socialOnly++
		case len(k) == 2:
			both++
		}
		n0, n1 := int64(u.HeadcountStart), int64(u.HeadcountEnd)
		cut := n0 - n1
		if n1 <= 30 && cut*1000 > 55*n0 && cut*100 <= 20*n0 {
			smallCut++ // passes only because it is small
		}
		if cut > 0 && (cut*1000 == 55*n0 || cut*100 == 20*n0) {
			boundary++
		}
		if u.Size == refund.SizeLarge {
			largeUnit++
		}
	}
	for name, k := range map[string]int{
		"unit without account": noAccount, "unit with only a social-insurance account": socialOnly,
		"unit with both accounts": both, "small unit with a cut between 5.5% and 20%": smallCut,
		"unit exactly on a layoff boundary": boundary, "large unit": largeUnit,
	} {
		if k == 0 {
			t.Errorf("no random %s", name)
		}
	}
	var active [5]int
	var removed, listedLater int
	for _, e := range ds.Exclusions {
		switch {
		case e.OnListAt(cfg.AsOf):
			active[e.List]++
		case e.ListedOn > cfg.AsOf:
			listedLater++
		case e.RemovedOn != 0:
			removed++
		}
	}
	for l := refund.ListCredit; l <= refund.ListEnvironment; l++ {
		if active[l] == 0 {
			t.Errorf("no entry of list %s active at D", l)
		}
	}
	if removed == 0 || listedLater == 0 {
		t.Errorf("%d entries removed before D, %d listed after D: want some of each", removed, listedLater)
	}
	if len(ds.Exclusions)*100 > len(ds.Units)*8 {
		t.Errorf("%d exclusion entries for %d units, want a few percent", len(ds.Exclusions), len(ds.Units))
	}
}

func TestAccountsLookReal(t *testing.T) {
	t.Parallel()
	ds := mustGenerate(t, config(3000, 4))
	names := make(map[string]string)
	for _, u := range ds.Units {
		names[u.USCC] = u.Name
	}
	emptyCode := 0
	for _, a := range ds.Accounts {
		if n := len(a.AccountNo); n < 16 || n > 19 || strings.Trim(a.AccountNo, "0123456789") != "" {
			t.Fatalf("account number %q", a.AccountNo)
		}
		if a.BankCode == "" {
			emptyCode++
		} else if len(a.BankCode) != 12 || strings.Trim(a.BankCode, "0123456789") != "" {
			t.Fatalf("bank code %q", a.BankCode)
		}
		if !strings.Contains(a.Bank, "银行") || !(strings.HasSuffix(a.Bank, "支行") || strings.HasSuffix(a.Bank, "分行") || strings.HasSuffix(a.Bank, "营业部")) {
			t.Errorf("bank %q", a.Bank)
		}
		if n, ok := names[a.USCC]; ok && a.AccountName != n {
			t.Errorf("account name %q of unit %q", a.AccountName, n)
		}
	}
	if emptyCode == 0 || emptyCode*100 > len(ds.Accounts)*30 {
		t.Errorf("%d of %d bank codes empty, want some", emptyCode, len(ds.Accounts))
	}
}

func TestOrgCheckAgreesWithUSCC(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"91440300708461136T", "914403001922038216", "91350200776049653A", "91440101MA5CJQ4N59", "92371581MA3P2D6H90"} {
		if got := orgCheck([]byte(code[8:16])); got != code[16] || !uscc.OrgCodeValid(code) {
			t.Errorf("%s: organization check %c, want %c", code, got, code[16])
		}
	}
}
