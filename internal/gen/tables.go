package gen

// The vocabulary of generated data: counties, industries, name parts,
// banks, list sources. Industry classes are real GB/T 4754-2017 classes.

// countyInfo is what names and banks need to know of a county.
type countyInfo struct {
	name     string // 东昌府区; "" when unknown
	short    string // 东昌: what bank branches are called after
	district bool   // a 区: company names say 聊城市东昌府区
	region   string // the six region digits of its units' USCCs
	legacy   string // older units' USCCs carry this region (茌平县 371523)
}

var counties = map[string]countyInfo{
	"371502": {"东昌府区", "东昌", true, "371502", ""},
	"371503": {"茌平区", "茌平", true, "371503", "371523"},
	"371521": {"阳谷县", "阳谷", false, "371521", ""},
	"371522": {"莘县", "莘县", false, "371522", ""},
	"371524": {"东阿县", "东阿", false, "371524", ""},
	"371525": {"冠县", "冠县", false, "371525", ""},
	"371526": {"高唐县", "高唐", false, "371526", ""},
	"371581": {"临清市", "临清", false, "371581", ""},
	// The zones run their own agencies under configured codes; their
	// enterprises register with the city, so their USCCs carry 371500.
	"371571": {"聊城经济技术开发区", "开发区", true, "371500", ""},
	"371572": {"聊城高新技术产业开发区", "高新区", true, "371500", ""},
	"371573": {"江北水城旅游度假区", "度假区", true, "371500", ""},
}

func countyOf(code string) countyInfo {
	if c, ok := counties[code]; ok {
		return c
	}
	// A code we do not know: a county of some other city. Its units carry
	// its code and generic names.
	return countyInfo{name: "", short: "城区", district: true, region: code}
}

// industry is one GB/T 4754-2017 class with the words a unit's name takes
// from it and its weight in its table.
type industry struct {
	class  string
	words  []string
	weight int
}

// tertiary are the service-industry classes most units are drawn from
// (divisions 51-97).
var tertiary = []industry{
	{"5211", []string{"商贸", "百货"}, 3},
	{"5212", []string{"超市", "商贸"}, 5},
	{"5213", []string{"便利店"}, 2},
	{"5123", []string{"果蔬", "农产品"}, 2},
	{"5221", []string{"粮油"}, 2},
	{"5232", []string{"服装", "服饰"}, 3},
	{"5251", []string{"医药", "大药房"}, 3},
	{"5261", []string{"汽车销售"}, 2},
	{"5263", []string{"汽车配件"}, 1},
	{"5272", []string{"家电"}, 2},
	{"5274", []string{"通讯器材"}, 1},
	{"5431", []string{"物流", "运输"}, 5},
	{"5437", []string{"城市配送"}, 1},
	{"5821", []string{"货运代理", "国际货运代理"}, 1},
	{"5920", []string{"仓储"}, 1},
	{"6020", []string{"快递"}, 1},
	{"6110", []string{"酒店", "大酒店"}, 2},
	{"6121", []string{"快捷酒店"}, 1},
	{"6129", []string{"宾馆", "旅馆"}, 2},
	{"6210", []string{"餐饮", "饭店", "酒楼"}, 6},
	{"6220", []string{"快餐", "餐饮管理"}, 3},
	{"6241", []string{"餐饮配送"}, 1},
	{"6291", []string{"小吃"}, 2},
	{"6432", []string{"网络科技"}, 1},
	{"6513", []string{"软件", "软件科技"}, 2},
	{"6531", []string{"信息技术", "网络工程"}, 2},
	{"7020", []string{"物业管理", "物业服务"}, 3},
	{"7030", []string{"房地产经纪"}, 1},
	{"7040", []string{"房屋租赁"}, 1},
	{"7111", []string{"汽车租赁"}, 1},
	{"7212", []string{"投资管理"}, 1},
	{"7224", []string{"供应链管理"}, 1},
	{"7241", []string{"财务咨询", "税务师事务所"}, 1},
	{"7243", []string{"企业管理咨询", "商务咨询"}, 2},
	{"7259", []string{"广告", "文化传媒", "广告传媒"}, 3},
	{"7263", []string{"劳务派遣", "人力资源"}, 2},
	{"7271", []string{"保安服务"}, 1},
	{"7291", []string{"旅行社", "国际旅行社"}, 1},
	{"7298", []string{"票务代理"}, 1},
	{"7320", []string{"科技", "技术研究"}, 1},
	{"7452", []string{"检测", "检测技术"}, 1},
	{"7484", []string{"工程设计", "建筑设计"}, 1},
	{"7492", []string{"设计", "装饰设计"}, 1},
	{"7511", []string{"农业科技"}, 1},
	{"7519", []string{"科技", "新能源科技"}, 1},
	{"7820", []string{"环卫", "保洁"}, 1},
	{"7840", []string{"园林绿化"}, 1},
	{"8010", []string{"家政", "家政服务"}, 3},
	{"8020", []string{"托育"}, 1},
	{"8030", []string{"洗衣", "干洗"}, 1},
	{"8040", []string{"美容", "美发", "美容美发"}, 3},
	{"8051", []string{"洗浴"}, 1},
	{"8053", []string{"养生", "健康管理"}, 1},
	{"8060", []string{"摄影", "婚纱摄影"}, 1},
	{"8070", []string{"婚庆", "婚礼策划"}, 1},
	{"8111", []string{"汽车维修", "汽修"}, 3},
	{"8132", []string{"家电维修"}, 1},
	{"8211", []string{"保洁服务", "清洁服务"}, 1},
	{"8223", []string{"宠物"}, 1},
	{"8391", []string{"职业培训", "职业技能培训"}, 1},
	{"8393", []string{"艺术培训", "文化艺术培训"}, 2},
	{"8394", []string{"教育咨询", "教育科技"}, 2},
	{"8425", []string{"诊所", "门诊部"}, 2},
	{"8514", []string{"养老服务", "康养"}, 1},
	{"8810", []string{"文化艺术", "演艺"}, 1},
	{"8930", []string{"健身"}, 1},
	{"9011", []string{"娱乐"}, 1},
	{"9013", []string{"网咖", "网吧"}, 1},
	{"9051", []string{"文化活动策划", "文化发展"}, 1},
}

// tertiaryOutside are service classes outside divisions 51-97: the
// divisions 05, 11 and 43 that 三次产业划分规定 counts as tertiary.
var tertiaryOutside = []industry{
	{"0512", []string{"农机服务"}, 2},
	{"1120", []string{"油田技术服务"}, 1},
	{"4310", []string{"金属制品修理"}, 1},
	{"4320", []string{"设备维修"}, 2},
}

// secondary are agriculture, industry and construction: not service.
var secondary = []industry{
	{"0113", []string{"种植"}, 1},
	{"0141", []string{"蔬菜种植"}, 1},
	{"1312", []string{"面粉"}, 1},
	{"1391", []string{"淀粉"}, 1},
	{"1819", []string{"服装加工"}, 1},
	{"2710", []string{"制药"}, 1},
	{"3140", []string{"钢管", "钢材"}, 2},
	{"3311", []string{"钢结构"}, 1},
	{"3670", []string{"汽车零部件"}, 1},
	{"4412", []string{"热电"}, 1},
	{"4710", []string{"建筑工程", "建筑安装"}, 2},
	{"4813", []string{"市政工程"}, 1},
	{"4910", []string{"电气安装", "电力工程"}, 1},
	{"5012", []string{"装饰工程", "装饰装修"}, 2},
}

// cooperative are the classes of farmers' cooperatives (农民专业合作社).
var cooperative = []industry{
	{"0113", []string{"玉米种植", "粮食种植"}, 2},
	{"0141", []string{"蔬菜种植", "果蔬种植"}, 3},
	{"0512", []string{"农机", "农机服务"}, 2},
}

// nonprofit are the classes of private non-enterprise units (民办非企业
// 单位) and the endings of their names.
var nonprofit = []struct {
	class string
	name  []string
}{
	{"8310", []string{"幼儿园"}},
	{"8391", []string{"职业培训学校"}},
	{"8393", []string{"艺术培训学校"}},
	{"8514", []string{"养老院", "颐养中心"}},
	{"8425", []string{"诊所"}},
}

// sectionOf returns the GB/T 4754-2017 section letter of a class.
func sectionOf(class string) byte {
	d := int(class[0]-'0')*10 + int(class[1]-'0')
	for _, s := range [...]struct {
		letter byte
		last   int
	}{
		{'A', 5}, {'B', 12}, {'C', 43}, {'D', 46}, {'E', 50}, {'F', 52}, {'G', 60},
		{'H', 62}, {'I', 65}, {'J', 69}, {'K', 70}, {'L', 72}, {'M', 75}, {'N', 79},
		{'O', 82}, {'P', 83}, {'Q', 85}, {'R', 90}, {'S', 96}, {'T', 97},
	} {
		if d <= s.last {
			return s.letter
		}
	}
	return 0
}

// 字号: a trade name is two or three of these.
var (
	tradeFirst = []string{
		"鑫", "恒", "瑞", "宏", "华", "泰", "金", "天", "盛", "德", "信", "永", "鼎", "顺",
		"兴", "隆", "福", "汇", "诚", "嘉", "博", "润", "东", "昌", "晟", "昊", "昱", "运",
		"佳", "安", "康", "和", "广", "丰", "众", "合", "新", "宇", "凯", "龙", "凤", "鲁",
		"聚", "益", "正", "万", "锦", "祥", "明", "志",
	}
	tradeSecond = []string{
		"源", "达", "泰", "通", "丰", "成", "盛", "鑫", "昌", "利", "祥", "辉", "耀", "宇",
		"航", "远", "德", "信", "邦", "诚", "业", "和", "瑞", "隆", "安", "海", "润", "景",
		"程", "锦", "鸿", "恒", "发", "荣", "茂", "森", "晨", "阳", "川", "峰",
	}
	tradeThird = []string{"祥", "源", "达", "通", "兴", "盛", "福", "顺", "泰", "旺", "嘉", "坤"}
	// Words of well-known local names, used whole now and then.
	tradeWhole = []string{"运河", "光岳", "水城", "鲁西", "凤凰", "东昌", "古楼", "江北", "狮子楼", "景阳冈", "清河", "湖滨"}
)

// bank is a bank with its CNAPS bank-code prefix and the shape of its
// account numbers.
type bank struct {
	name       string
	code       string // the first three digits of its 联行号
	acctPrefix string
	acctLen    int
	kind       bankKind
}

type bankKind uint8

const (
	bankState bankKind = iota // branches are 聊城X支行 / X县支行
	bankCity                  // 齐鲁银行聊城分行
	bankRural                 // 山东X农村商业银行股份有限公司
)

var banks = []struct {
	bank
	weight int
}{
	{bank{"中国工商银行", "102", "1610", 19, bankState}, 6},
	{bank{"中国农业银行", "103", "1544", 19, bankState}, 5},
	{bank{"中国银行", "104", "2250", 18, bankState}, 3},
	{bank{"中国建设银行", "105", "3705", 19, bankState}, 5},
	{bank{"交通银行", "301", "3780", 18, bankState}, 2},
	{bank{"中国邮政储蓄银行", "403", "9370", 19, bankState}, 2},
	{bank{"农村商业银行", "402", "9150", 19, bankRural}, 6},
	{bank{"齐鲁银行", "313", "8660", 16, bankCity}, 1},
	{bank{"莱商银行", "313", "8020", 17, bankCity}, 1},
	{bank{"恒丰银行", "315", "8530", 17, bankCity}, 1},
}

// listSources are the issuers of each exclusion list, indexed by refund.List.
var listSources = [...][]string{
	1: {"信用中国", "信用中国（山东）", "信用中国（山东聊城）"},
	2: {"聊城市工业和信息化局", "聊城市发展和改革委员会"},
	3: {"聊城市发展和改革委员会"},
	4: {"聊城市生态环境局"},
}

// mobilePrefixes are three-digit prefixes of Chinese mobile numbers.
var mobilePrefixes = []string{
	"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"150", "151", "152", "153", "155", "156", "157", "158", "159",
	"166", "176", "177", "178", "180", "181", "182", "183", "184", "185",
	"186", "187", "188", "189", "191", "198", "199",
}
