package refund

import (
	"fmt"

	"wengang/policy/civil"
)

// Size is an enterprise's size class (企业划型).
type Size uint8

// Size classes. SizeUnknown is an empty cell: the unit is held (SIZE_MISSING)
// and NOT_SME is not judged.
const (
	SizeUnknown Size = iota
	SizeLarge
	SizeMedium
	SizeSmall
	SizeMicro
)

var sizeNames = [...]string{"", "large", "medium", "small", "micro"}

// String returns the English key of s ("" when unknown).
func (s Size) String() string {
	if int(s) < len(sizeNames) {
		return sizeNames[s]
	}
	return fmt.Sprintf("Size(%d)", uint8(s))
}

// Status is a unit's registration status (登记状态).
type Status uint8

// Registration statuses.
const (
	StatusActive Status = iota + 1
	StatusDeregistered
	StatusRevoked
)

var statusNames = [...]string{"", "active", "deregistered", "revoked"}

// String returns the English key of s.
func (s Status) String() string {
	if int(s) < len(statusNames) && s != 0 {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// AccountKind says where an account comes from.
type AccountKind uint8

// Account kinds, in order of preference for payment.
const (
	// AccountCorporate is the corporate account (对公账户) of the
	// tax–treasury–bank agreement (税库银三方协议).
	AccountCorporate AccountKind = iota + 1
	// AccountSocialInsurance is the account the unit pays social
	// insurance from (社保缴费账户); used for small and micro units only.
	AccountSocialInsurance
)

var accountKindNames = [...]string{"", "corporate", "social_insurance"}

// String returns the English key of k.
func (k AccountKind) String() string {
	if int(k) < len(accountKindNames) && k != 0 {
		return accountKindNames[k]
	}
	return fmt.Sprintf("AccountKind(%d)", uint8(k))
}

// List is an exclusion list (名单) that keeps a unit out while it is on it.
type List uint8

// Exclusion lists.
const (
	ListCredit         List = iota + 1 // 严重违法失信 (信用中国)
	ListZombie                         // 僵尸企业出清名单
	ListIndustryPolicy                 // 产业结构调整
	ListEnvironment                    // 环保
)

var listNames = [...]string{"", "credit", "zombie", "industry_policy", "environment"}

// String returns the English key of l.
func (l List) String() string {
	if int(l) < len(listNames) && l != 0 {
		return listNames[l]
	}
	return fmt.Sprintf("List(%d)", uint8(l))
}

// Unit is one insured unit (参保单位) as the source systems export it.
type Unit struct {
	USCC           string // normalized; its check character may be wrong (a hold)
	Name           string
	County         string // county or agency code, normalized (371523 → 371503)
	Industry       string // GB/T 4754-2017 class, four digits, no section letter
	Size           Size
	Status         Status
	HeadcountStart int32 // N0: insured staff at the start of the policy year
	HeadcountEnd   int32 // N1: insured staff at the end of the policy year
	Mobile         string
}

// Contribution is one row of unemployment-insurance contribution detail
// (失业保险缴费明细). A month may have several rows.
type Contribution struct {
	USCC        string
	Period      civil.Month // 费款所属期
	EmployerFen int64
	EmployeeFen int64
	LateFeeFen  int64      // 滞纳金; never counts towards the base
	PaidOn      civil.Date // 到账日期; zero when unpaid
}

// Account is one bank account known for a unit.
type Account struct {
	USCC        string
	Kind        AccountKind
	Bank        string // 开户行
	BankCode    string // 联行号, optional
	AccountNo   string
	AccountName string // 户名
}

// Exclusion is one entry of an exclusion list.
type Exclusion struct {
	USCC      string
	List      List
	Source    string
	ListedOn  civil.Date
	RemovedOn civil.Date // zero while still listed
}

// OnListAt reports whether the entry keeps its unit out at date d: listed
// on or before d and not removed on or before d.
func (e Exclusion) OnListAt(d civil.Date) bool {
	return e.ListedOn <= d && (e.RemovedOn.IsZero() || e.RemovedOn > d)
}

// Dataset is everything one screening reads: the four source files of a
// county (or of several). Rows keep their file order.
type Dataset struct {
	Units         []Unit
	Contributions []Contribution
	Accounts      []Account
	Exclusions    []Exclusion
}
