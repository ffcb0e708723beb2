import SyncNode
import SyncProtocol

/// Facts of the district's 2017 paired-assistance plan, used as the embedded default data set.
/// Amounts are in fen (1 万元 = 1,000,000 fen).
public enum DefaultPlan {
    public struct County: Sendable {
        public var id: String
        public var name: String
        public var province: String
        public var carrierUnit: String
        /// Aid budgeted per year, 2016–2020, in fen.
        public var yearlyAidFen: Int64
    }

    public struct Project: Sendable {
        public var id: String
        public var county: String
        public var name: String
        public var category: String
        public var workArea: String
        public var leadUnit: String
    }

    public struct WorkArea: Sendable {
        public var id: String
        public var name: String
        public var leadUnit: String
    }

    public static let years: ClosedRange<Int> = 2016...2020
    public static let fenPerWan: Int64 = 1_000_000

    public static let counties: [County] = [
        County(id: "chengde", name: "承德县", province: "河北省承德市", carrierUnit: "东丽开发区", yearlyAidFen: 2000 * fenPerWan),
        County(id: "lintan", name: "临潭县", province: "甘肃省甘南州", carrierUnit: "东丽湖街", yearlyAidFen: 1000 * fenPerWan),
        County(id: "gangu", name: "甘谷县", province: "甘肃省天水市", carrierUnit: "华明街", yearlyAidFen: 1000 * fenPerWan),
    ]

    public static let workAreas: [WorkArea] = [
        WorkArea(id: "overall", name: "全面实施帮扶", leadUnit: "三个承接单位"),
        WorkArea(id: "education", name: "教育培训交流", leadUnit: "区教育局"),
        WorkArea(id: "health", name: "医疗卫生合作", leadUnit: "区卫生计生委"),
        WorkArea(id: "labour", name: "劳务培训就业", leadUnit: "区人力社保局"),
        WorkArea(id: "tourism", name: "旅游文化对接", leadUnit: "区旅游局"),
        WorkArea(id: "trade", name: "产业经贸合作", leadUnit: "区商务委"),
        WorkArea(id: "infrastructure", name: "基础设施建设", leadUnit: "专项工作组牵头单位"),
        WorkArea(id: "cadres", name: "干部交流培训", leadUnit: "区委组织部"),
    ]

    /// The first batch of projects named in the plan.
    public static let projects: [Project] = [
        Project(id: "cd-town", county: "chengde", name: "东丽小镇异地安置工程", category: "relocation", workArea: "infrastructure", leadUnit: "东丽开发区"),
        Project(id: "cd-school", county: "chengde", name: "东丽小学", category: "school", workArea: "education", leadUnit: "区教育局"),
        Project(id: "cd-clinic", county: "chengde", name: "东丽卫生院", category: "clinic", workArea: "health", leadUnit: "区卫生计生委"),
        Project(id: "cd-trade", county: "chengde", name: "农产品展示交易中心", category: "trade-centre", workArea: "trade", leadUnit: "区商务委"),
        Project(id: "lt-town", county: "lintan", name: "东丽小镇（农家院特色小镇）", category: "guesthouse-town", workArea: "tourism", leadUnit: "东丽湖街"),
        Project(id: "lt-school", county: "lintan", name: "东丽小学", category: "school", workArea: "education", leadUnit: "区教育局"),
        Project(id: "lt-clinic", county: "lintan", name: "东丽卫生院", category: "clinic", workArea: "health", leadUnit: "区卫生计生委"),
        Project(id: "lt-cdc-base", county: "lintan", name: "临潭县疾控培训基地（东丽）", category: "training-base", workArea: "health", leadUnit: "区卫生计生委"),
        Project(id: "lt-trade", county: "lintan", name: "农产品展示交易中心", category: "trade-centre", workArea: "trade", leadUnit: "区商务委"),
        Project(id: "gg-dorm-1", county: "gangu", name: "甘谷一中学生公寓楼", category: "dormitory", workArea: "education", leadUnit: "区教育局"),
        Project(id: "gg-dorm-2", county: "gangu", name: "甘谷二中学生公寓楼", category: "dormitory", workArea: "education", leadUnit: "区教育局"),
        Project(id: "gg-tengda", county: "gangu", name: "腾达职业技术学校合作培训就业", category: "vocational-training", workArea: "labour", leadUnit: "区人力社保局"),
        Project(id: "gg-trade", county: "gangu", name: "农产品展示交易中心", category: "trade-centre", workArea: "trade", leadUnit: "区商务委"),
    ]

    /// What HQ records as reference data and annual targets, as intents.
    public static var referenceIntents: [Intent] {
        var intents: [Intent] = []
        for c in counties {
            intents.append(
                .put(
                    collection: "counties", recordID: c.id,
                    fields: [
                        .init("name", .text(c.name)), .init("province", .text(c.province)), .init("carrier_unit", .text(c.carrierUnit)),
                        .init("yearly_aid_fen", .int(c.yearlyAidFen)),
                    ]))
            for year in years {
                intents.append(
                    .append(
                        ledger: "fund_targets", entryID: "\(c.id)-\(year)",
                        fields: [.init("county", .text(c.id)), .init("year", .int(Int64(year))), .init("amount_fen", .int(c.yearlyAidFen))]))
            }
        }
        for w in workAreas {
            intents.append(
                .put(collection: "work_areas", recordID: w.id, fields: [.init("name", .text(w.name)), .init("lead_unit", .text(w.leadUnit))]))
        }
        return intents
    }

    /// The first-batch projects of one county, as intents.
    public static func projectIntents(county: String) -> [Intent] {
        projects.filter { $0.county == county }.map { p in
            .put(
                collection: "projects", recordID: p.id,
                fields: [
                    .init("name", .text(p.name)), .init("county", .text(p.county)), .init("category", .text(p.category)),
                    .init("work_area", .text(p.workArea)), .init("lead_unit", .text(p.leadUnit)), .init("stage", .text("approved")),
                ])
        }
    }
}
