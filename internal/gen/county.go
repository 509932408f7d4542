package gen

import (
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"wengang/policy/civil"
	"wengang/policy/refund"
	"wengang/policy/uscc"
)

// entity is the legal form of a unit; it decides the first two characters
// of its USCC and the shape of its name.
type entity uint8

const (
	entityCompany     entity = iota // 企业: USCC 91, 有限公司
	entityIndividual                // 个体工商户: USCC 92
	entityCooperative               // 农民专业合作社: USCC 93
	entityNonprofit                 // 民办非企业单位: USCC 52
)

// accountPlan says which accounts a unit has.
type accountPlan uint8

const (
	acctCorporate accountPlan = iota
	acctBoth
	acctSocial
	acctNone
)

// habit is a way a unit pays (or fails to pay) its contributions; a draft
// has a set of them.
type habit uint32

const (
	habitSloppy       habit = 1 << iota // some payments late, each before D, with a late fee
	habitArrears                        // one to three months of Y unpaid or paid after D
	habitStopPaying                     // from a month of Y on, nothing is paid
	habitOldGaps                        // a few months before Y never paid
	habitBackPay                        // months before Y paid during Y with late fees (补缴)
	habitSplit                          // a few months with a second row (补差)
	habitRecentUnpaid                   // the last periods (after Y) not yet paid

	// Habits of catalogue cases only: one precise event each.
	habitOneUnpaidY     // one month of Y has no payment
	habitOneAfterAsOf   // one month of Y is paid the day after D
	habitOneOnAsOf      // one month of Y is paid on D itself
	habitLateDecember   // December of Y is paid late in Y+1, before D
	habitSplitUnpaidY   // a month of Y has a second row, unpaid
	habitSplitPaidY     // a month of Y has a second row, paid
	habitSplitAfterAsOf // a month of Y has a second row paid after D
	habitAllYUnpaid     // no month of Y is paid
	habitPriorUnpaid    // no month before Y is paid
	habitPriorBackPaid  // every month before Y is paid during Y
)

// listPlan is one entry on an exclusion list.
type listPlan struct {
	list            refund.List
	listed, removed civil.Date
}

// draft is a unit before its USCC, name and rows are made.
type draft struct {
	unit   refund.Unit // Industry, Size, Status, HeadcountStart, HeadcountEnd
	entity entity
	words  []string // 行业词 for its name
	orgBad bool     // the GB 11714 check digit inside the USCC is wrong
	hold   bool     // the USCC's own check character is wrong

	start, stop     civil.Month // first and last period with contributions
	gapFrom, gapTo  civil.Month // periods without insured staff (no rows); zero: none
	before, after   int32       // headcount level before Y (at its end) and after Y
	priorDrift      int         // percent by which the headcount differed two years before Y's start
	postDrift       int         // percent by which it drifts in the year after Y
	wage            int64       // contribution base per person-month in Y, fen
	habits          habit
	accounts        accountPlan
	lists           []listPlan
	oldRegistration bool // registered before its county's code changed: its USCC may carry the legacy code
	prompt          bool // pays on time and by D even when D is early in a month
}

// countyGen makes one county's units.
type countyGen struct {
	r     *rand.Rand
	code  string
	info  countyInfo
	y     int
	asOf  civil.Date
	first civil.Month // the first period of any history: January of Y−2
	last  civil.Month // the last period: the month before D

	ds    *refund.Dataset
	usccs map[string]struct{}
	names map[string]struct{}
	cases *[]Case

	rows []refund.Contribution // scratch: one unit's rows
	supp [][]refund.Contribution
}

func newCountyGen(cfg Config, code string, ds *refund.Dataset, usccs map[string]struct{}, cases *[]Case) *countyGen {
	return &countyGen{
		r:     newRand(cfg.Seed, code),
		code:  code,
		info:  countyOf(code),
		y:     cfg.PolicyYear,
		asOf:  cfg.AsOf,
		first: month(cfg.PolicyYear-2, 1),
		last:  addMonths(cfg.AsOf.MonthOf(), -1),
		ds:    ds,
		usccs: usccs,
		names: make(map[string]struct{}),
		cases: cases,
	}
}

// run makes the county's units: random ones, with the catalogue's cases
// in random places among them.
func (g *countyGen) run(units int) {
	r := g.r
	cat := g.catalogue()
	if len(cat) > units {
		cat = cat[:units]
	}
	// The catalogue's cases go to distinct random places among the units.
	slots := make(map[int]caseKind, len(cat))
	pos := samplePositions(r, units, len(cat))
	r.Shuffle(len(cat), func(i, j int) { cat[i], cat[j] = cat[j], cat[i] })
	for i, p := range pos {
		slots[p] = cat[i]
	}
	for i := 0; i < units; i++ {
		ck := slots[i]
		// About one in 500 units is a phantom: its rows are exported but
		// it is not in units.csv.
		phantom := ck != 0 && catalogueCases[ck-1].phantom
		if phantom || r.IntN(500) == 0 {
			g.emit(g.randomDraft(), true, 0)
		}
		if ck == 0 || phantom {
			g.emit(g.randomDraft(), false, 0)
			continue
		}
		g.emit(g.caseDraft(ck), false, ck)
	}
}

// samplePositions returns k distinct integers of [0, n), sorted (Floyd's
// algorithm).
func samplePositions(r *rand.Rand, n, k int) []int {
	set := make(map[int]bool, k)
	for j := n - k; j < n; j++ {
		t := r.IntN(j + 1)
		if set[t] {
			set[j] = true
		} else {
			set[t] = true
		}
	}
	out := make([]int, 0, k)
	for p := range set {
		out = append(out, p)
	}
	sort.Ints(out)
	return out
}

// chance reports true with probability per/1000.
func chance(r *rand.Rand, per int) bool { return r.IntN(1000) < per }

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func pickIndustry(r *rand.Rand, table []industry) industry {
	total := 0
	for _, in := range table {
		total += in.weight
	}
	n := r.IntN(total)
	for _, in := range table {
		if n < in.weight {
			return in
		}
		n -= in.weight
	}
	return table[len(table)-1]
}

func (d *draft) setIndustry(in industry) {
	d.unit.Industry = in.class
	d.words = in.words
}

// headcountFor draws a headcount typical of a size class.
func headcountFor(r *rand.Rand, s refund.Size) int32 {
	switch s {
	case refund.SizeMicro:
		return int32(1 + r.IntN(10))
	case refund.SizeSmall:
		return int32(10 + r.IntN(1+r.IntN(91)))
	case refund.SizeMedium:
		return int32(100 + r.IntN(201))
	case refund.SizeLarge:
		return int32(300 + r.IntN(1+r.IntN(2701)))
	}
	return headcountFor(r, refund.Size(1+r.IntN(4)))
}

// randomDraft draws a unit from the county's distributions.
func (g *countyGen) randomDraft() *draft {
	r, y := g.r, g.y
	d := &draft{}
	d.unit.Status = refund.StatusActive

	// Legal form, industry and size.
	switch x := r.IntN(100); {
	case x < 81:
		d.entity = entityCompany
		switch x := r.IntN(100); {
		case x < 85:
			d.setIndustry(pickIndustry(r, tertiary))
		case x < 87:
			d.setIndustry(pickIndustry(r, tertiaryOutside))
		default:
			d.setIndustry(pickIndustry(r, secondary))
		}
		switch x := r.IntN(100); {
		case x < 38:
			d.unit.Size = refund.SizeMicro
		case x < 76:
			d.unit.Size = refund.SizeSmall
		case x < 90:
			d.unit.Size = refund.SizeMedium
		case x < 95:
			d.unit.Size = refund.SizeLarge
		default:
			d.unit.Size = refund.SizeUnknown
		}
	case x < 95:
		d.entity = entityIndividual
		d.setIndustry(pickIndustry(r, tertiary))
		d.unit.Size = refund.SizeMicro
		if chance(r, 40) {
			d.unit.Size = refund.SizeUnknown
		}
	case x < 98:
		d.entity = entityCooperative
		d.setIndustry(pickIndustry(r, cooperative))
		d.unit.Size = refund.SizeMicro
		if chance(r, 300) {
			d.unit.Size = refund.SizeSmall
		}
	default:
		d.entity = entityNonprofit
		np := pick(r, nonprofit)
		d.unit.Industry, d.words = np.class, np.name
		d.unit.Size = refund.SizeSmall
		if chance(r, 400) {
			d.unit.Size = refund.SizeMicro
		}
	}
	n0 := headcountFor(r, d.unit.Size)

	// When its history starts. Units founded before Y−1 carry history
	// from Y−1 on (the export's window) or, for a few, from Y−2.
	switch x := r.IntN(1000); {
	case x < 130:
		d.start = randomMonth(r, g.first, month(y-2, 12))
	case x < 630:
		d.start = month(y-1, 1)
	case x < 880:
		d.start = randomMonth(r, month(y-1, 2), month(y-1, 12))
	case x < 990 || g.last.Year() <= y:
		d.start = randomMonth(r, month(y, 1), month(y, 12))
	default:
		d.start = randomMonth(r, month(y+1, 1), g.last)
	}

	// Headcounts: N0 and N1 with a spread of layoff rates.
	n1 := layoff(r, &n0)
	switch {
	case d.start.Year() > y:
		n0, n1 = 0, 0
	case d.start == month(y, 12):
		n1 = n0
	}
	d.unit.HeadcountStart, d.unit.HeadcountEnd = n0, n1
	d.before, d.after = n0, n1
	if d.after == 0 {
		d.after = headcountFor(r, d.unit.Size)
	}
	d.priorDrift = r.IntN(31) - 15
	d.postDrift = r.IntN(21) - 10
	d.wage = wage(r)

	// Registration status, and units that stopped paying.
	switch x := r.IntN(1000); {
	case x < 40:
		d.unit.Status = refund.StatusDeregistered
		g.closeDown(d)
	case x < 60:
		d.unit.Status = refund.StatusRevoked
		g.closeDown(d)
	case x < 75 && d.start.Year() < y:
		// Dormant: active on paper, nobody insured since a month of Y−1.
		g.stopBefore(d)
	}

	// Payment habits.
	for _, h := range [...]struct {
		h   habit
		per int
	}{
		{habitSloppy, 100}, {habitArrears, 40}, {habitStopPaying, 12}, {habitOldGaps, 50},
		{habitBackPay, 50}, {habitSplit, 40}, {habitRecentUnpaid, 80},
	} {
		if chance(r, h.per) {
			d.habits |= h.h
		}
	}

	// Accounts.
	var plan [4]int // per mille: corporate, both, social only, none
	switch d.entity {
	case entityCompany:
		plan = [4]int{750, 80, 100, 70}
	case entityIndividual:
		plan = [4]int{450, 50, 300, 200}
	case entityCooperative:
		plan = [4]int{600, 50, 150, 200}
	default:
		plan = [4]int{800, 50, 50, 100}
	}
	x := r.IntN(1000)
	for i, p := range plan {
		if x < p {
			d.accounts = accountPlan(i)
			break
		}
		x -= p
	}

	// Exclusion lists: a few percent of units.
	if chance(r, 35) {
		l := listPlan{list: pickList(r)}
		l.listed = randomDate(r, day(g.first, 1), g.asOf.AddDays(90))
		if chance(r, 250) {
			l.removed = l.listed.AddDays(30 + r.IntN(510))
		}
		d.lists = append(d.lists, l)
		if l.removed != 0 && chance(r, 150) {
			again := listPlan{list: l.list, listed: l.removed.AddDays(60 + r.IntN(300))}
			d.lists = append(d.lists, again)
		}
	}

	d.orgBad = chance(r, 20)
	d.hold = chance(r, 5)
	d.oldRegistration = d.start < month(y-1, 1) || chance(r, 300)
	return d
}

func pickList(r *rand.Rand) refund.List {
	switch x := r.IntN(100); {
	case x < 35:
		return refund.ListCredit
	case x < 55:
		return refund.ListZombie
	case x < 70:
		return refund.ListIndustryPolicy
	default:
		return refund.ListEnvironment
	}
}

// layoff draws N1 for N0, adjusting N0 for the exact-boundary cases.
func layoff(r *rand.Rand, n0p *int32) int32 {
	n0 := *n0p
	var n1 int32
	switch x := r.IntN(1000); {
	case x < 550: // growth
		n1 = n0 + n0*int32(r.IntN(21))/100
		if chance(r, 200) {
			n1 += int32(1 + r.IntN(3))
		}
	case x < 780: // a cut within 5.5%
		n1 = n0 - n0*int32(r.IntN(56))/1000
	case x < 880: // 5.5% to 20%: only small units pass
		cut := n0 * int32(56+r.IntN(145))
		if n0 >= 10 {
			cut += 999 // round up: never 5.5% or below
		}
		n1 = n0 - cut/1000
	case x < 940: // beyond 20%
		n1 = n0 - n0*int32(200+r.IntN(601))/1000
		if n1 == n0 {
			n1--
		}
	default: // exactly on a boundary, or one staff member past it
		over := int32(r.IntN(2))
		switch {
		case n0 >= 400 || (n0 >= 200 && n0 < 300): // keeps its size class
			n0 -= n0 % 200
			n1 = n0 - n0*55/1000 - over
		case n0 >= 5:
			n0 -= n0 % 5
			n1 = n0 - n0/5 - over
		default:
			n1 = n0 - 1 - over
		}
	}
	if n1 < 0 {
		n1 = 0
	}
	*n0p = n0
	return n1
}

// wage draws a contribution base per person-month, 3,000 to 8,000 yuan.
func wage(r *rand.Rand) int64 {
	return int64(3000+r.IntN(1+r.IntN(5001))) * 100
}

// closeDown ends a deregistered or revoked unit's history.
func (g *countyGen) closeDown(d *draft) {
	r, y := g.r, g.y
	switch x := r.IntN(100); {
	case x < 50 && d.start < month(y, 10):
		// Wound up during Y: nobody insured at its end.
		d.stop = randomMonth(r, max(d.start, month(y, 3)), month(y, 11))
		d.unit.HeadcountEnd = 0
	case x < 80 && g.last.Year() > y && d.start.Year() <= y:
		d.stop = randomMonth(r, month(y+1, 1), g.last)
	case d.start.Year() < y:
		g.stopBefore(d)
	}
}

// stopBefore makes a unit stop paying during Y−1: no one is insured at
// the start or the end of Y.
func (g *countyGen) stopBefore(d *draft) {
	last := month(g.y-1, 11)
	if d.start > last {
		return
	}
	d.stop = randomMonth(g.r, d.start, last)
	d.unit.HeadcountStart, d.unit.HeadcountEnd = 0, 0
	if d.before == 0 {
		d.before = headcountFor(g.r, d.unit.Size)
	}
}

// emit turns a draft into a unit and its rows. A phantom's rows are
// emitted but the unit is not.
func (g *countyGen) emit(d *draft, phantom bool, ck caseKind) {
	u := d.unit
	u.County = g.code
	u.USCC = g.newUSCC(d)
	u.Name = g.newName(d)
	if !chance(g.r, 120) {
		u.Mobile = mobile(g.r)
	}
	if !phantom {
		g.ds.Units = append(g.ds.Units, u)
		if ck != 0 {
			*g.cases = append(*g.cases, caseOf(ck, d, u.USCC))
		}
	}
	g.history(d, u.USCC)
	g.accountsOf(d, &u)
	for _, l := range d.lists {
		g.ds.Exclusions = append(g.ds.Exclusions, refund.Exclusion{
			USCC:      u.USCC,
			List:      l.list,
			Source:    g.listSource(l.list),
			ListedOn:  l.listed,
			RemovedOn: l.removed,
		})
	}
}

func mobile(r *rand.Rand) string {
	b := make([]byte, 0, 11)
	b = append(b, pick(r, mobilePrefixes)...)
	for len(b) < 11 {
		b = append(b, byte('0'+r.IntN(10)))
	}
	return string(b)
}

// newUSCC makes a unique code of GB 32100 for d: the registration
// authority and type of its legal form, the county's region, a GB 11714
// organization code (older units: eight digits; newer: MA and six
// characters) with its check digit, and the check character.
func (g *countyGen) newUSCC(d *draft) string {
	r := g.r
	var b [uscc.Length]byte
	for {
		switch d.entity {
		case entityCompany:
			b[0], b[1] = '9', '1'
		case entityIndividual:
			b[0], b[1] = '9', '2'
		case entityCooperative:
			b[0], b[1] = '9', '3'
		case entityNonprofit:
			b[0], b[1] = '5', '2'
		}
		region := g.info.region
		if g.info.legacy != "" && d.oldRegistration && chance(r, 600) {
			region = g.info.legacy
		}
		copy(b[2:8], region)
		org := b[8:17]
		if d.start < month(g.y-1, 1) && chance(r, 500) {
			org[0] = "3567"[r.IntN(4)]
			for i := 1; i < 8; i++ {
				org[i] = byte('0' + r.IntN(10))
			}
		} else {
			org[0], org[1] = 'M', 'A'
			for i := 2; i < 8; i++ {
				org[i] = uscc.Alphabet[r.IntN(len(uscc.Alphabet))]
			}
		}
		org[8] = orgCheck(org[:8])
		if d.orgBad {
			org[8] = wrongOrgCheck(r, org[8])
		}
		c, err := uscc.CheckChar(string(b[:17]))
		if err != nil {
			panic(err) // every character above is of the alphabet
		}
		if d.hold {
			c = uscc.Alphabet[(indexOf(c)+1+r.IntN(len(uscc.Alphabet)-1))%len(uscc.Alphabet)]
		}
		b[17] = c
		code := string(b[:])
		if _, dup := g.usccs[code]; !dup {
			g.usccs[code] = struct{}{}
			return code
		}
	}
}

func indexOf(c byte) int {
	for i := 0; i < len(uscc.Alphabet); i++ {
		if uscc.Alphabet[i] == c {
			return i
		}
	}
	return 0
}

// orgCheck is the GB 11714 check character of an 8-character body.
func orgCheck(body []byte) byte {
	w := [8]int{3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, c := range body {
		v := int(c - '0')
		if c >= 'A' {
			v = int(c-'A') + 10
		}
		sum += v * w[i]
	}
	switch c := 11 - sum%11; c {
	case 10:
		return 'X'
	case 11:
		return '0'
	default:
		return byte('0' + c)
	}
}

func wrongOrgCheck(r *rand.Rand, right byte) byte {
	for {
		c := "0123456789X"[r.IntN(11)]
		if c != right {
			return c
		}
	}
}

// newName makes a unit name not yet used in the county.
func (g *countyGen) newName(d *draft) string {
	for try := 0; ; try++ {
		n := g.makeName(d, try)
		if try >= 40 {
			n += "第" + strconv.Itoa(try-39) + "分公司"
		}
		if _, dup := g.names[n]; !dup {
			g.names[n] = struct{}{}
			return n
		}
	}
}

var surnames = []string{"张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴", "孙", "马", "朱", "胡", "郭", "何", "高", "林", "罗", "郑"}

func (g *countyGen) trade(try int) string {
	r := g.r
	if chance(r, 40) {
		return pick(r, tradeWhole)
	}
	t := pick(r, tradeFirst) + pick(r, tradeSecond)
	if try > 1 || chance(r, 150) {
		t += pick(r, tradeThird)
	}
	return t
}

// place is how a name starts with its county: 聊城市东昌府区, 阳谷县.
func (g *countyGen) place() string {
	switch {
	case g.info.name == "":
		return "聊城市"
	case g.info.district && utf8.RuneCountInString(g.info.name) > 4: // a zone: 聊城经济技术开发区
		return "聊城市"
	case g.info.district:
		return "聊城市" + g.info.name
	default:
		return g.info.name
	}
}

func (g *countyGen) makeName(d *draft, try int) string {
	r := g.r
	word := pick(r, d.words)
	switch d.entity {
	case entityIndividual:
		trade := g.trade(try)
		if chance(r, 200) {
			trade = pick(r, surnames) + pick(r, []string{"记", "家", "氏"})
			if try > 0 {
				trade = pick(r, tradeFirst) + trade
			}
		}
		n := g.place() + trade + word + shopEnding(r, d.unit.Industry, word)
		if chance(r, 500) {
			n += "（个体工商户）"
		}
		return n
	case entityCooperative:
		return g.place() + g.trade(try) + word + "专业合作社"
	case entityNonprofit:
		return g.place() + g.trade(try) + word
	}
	suffix := "有限公司"
	switch x := r.IntN(100); {
	case x < 28:
		suffix = "有限责任公司"
	case x < 33 && (d.unit.Size == refund.SizeLarge || d.unit.Size == refund.SizeMedium):
		suffix = "股份有限公司"
	}
	trade := g.trade(try)
	switch x := r.IntN(100); {
	case x < 45:
		return g.place() + trade + word + suffix
	case x < 72:
		return "聊城" + trade + word + suffix
	case x < 80:
		return "聊城市" + trade + word + suffix
	case x < 93:
		return "山东" + trade + word + suffix
	default:
		return trade + "（聊城）" + word + suffix
	}
}

// listSource names the issuer of a list entry.
func (g *countyGen) listSource(l refund.List) string {
	if l == refund.ListEnvironment && g.info.name != "" && chance(g.r, 500) {
		return "聊城市生态环境局" + g.info.short + "分局"
	}
	return pick(g.r, listSources[l])
}

// shopEnding is how an individual business's name ends: 店, 商行, 服务部,
// or nothing when the industry word already says it (饭店, 大药房).
func shopEnding(r *rand.Rand, class, word string) string {
	for _, end := range []string{"店", "馆", "房", "所", "楼", "吧", "部", "社", "室", "超市", "咖"} {
		if strings.HasSuffix(word, end) {
			return ""
		}
	}
	switch sectionOf(class) {
	case 'F':
		return pick(r, []string{"店", "店", "商行", "经营部"})
	case 'H':
		return pick(r, []string{"店", "馆"})
	case 'O':
		return pick(r, []string{"店", "服务部", "工作室"})
	}
	return pick(r, []string{"服务部", "工作室", "中心"})
}
