"""The report's two languages: Chinese texts keyed by the codes and names of the rules.

English texts live with the rules (:data:`spillover.rules.REASONS`, each step
kind's ``text``, each role's ``text``); this module holds the Chinese for the same
keys, and the report's own words in both languages. ``tests/test_report.py``
checks that every code, step kind, role, verdict and label has both.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "LANGS",
    "LOAN_STATUS",
    "MATCH_HOW_ZH",
    "REASONS_ZH",
    "RECORD_TEXTS",
    "ROLE_TEXTS_ZH",
    "STEP_TEXTS_ZH",
    "UI",
    "VERDICTS",
]

LANGS = ("en", "zh")

#: reason code -> Chinese text (the English is :data:`spillover.rules.REASONS`)
REASONS_ZH: Mapping[str, str] = {
    "OWN_DEFAULT": "当事人本人的贷款逾期或违约。",
    "OWN_PHONE": "被列入名单的号码在贷款发放时是借款人本人的号码。",
    "PHONE_REASSIGNED": "该号码当时属于借款人，但列入名单时已归他人所有（号码已转让）。",
    "PHONE_USED_SMS_VERIFIED": "他人使用当事人的手机号申请贷款，并通过了短信验证。",
    "PHONE_USED_UNVERIFIED": "他人使用当事人的手机号申请贷款，未经短信验证。",
    "GUARANTOR": "当事人的手机号是该贷款的担保人：承担担保责任。",
    "EMERGENCY_CONTACT": "当事人的手机号只是他人贷款的紧急联系人。",
    "REFERENCE": "当事人的手机号只是他人贷款的推荐人/证明人。",
    "ADDRESS_BOOK": "当事人的手机号只是出现在另一借款人上传的通讯录中。",
    "OWNER_UNVERIFIED": "当事人对该号码的所有权未经实名认证。",
    "CHAIN_VIA_BORROWER": "这条关联经过了另一借款人的其他贷款。",
    "SHARED_BLACKLIST": "该名单是通过黑名单共享传到这个平台的。",
    "COPIED_ENTRY": "该条目是从另一平台的条目复制来的。",
    "MATCHED_BY_KNOWN": "路径上的平台记录按数据本身就是当事人。",
    "MATCHED_BY_ID_NUMBER": "路径上的平台记录按身份证号匹配到当事人。",
    "MATCHED_BY_NAME_AND_PHONE": "平台记录按姓名和手机号匹配到当事人。",
    "MATCHED_BY_NAME_AND_BIRTH_DATE": "平台记录按姓名和出生日期匹配到当事人。",
    "MATCHED_BY_NAME_AND_CITY": "平台记录仅按姓名和城市匹配到当事人。",
    "MATCHED_BY_PHONE_ONLY": "平台记录仅凭手机号匹配到当事人：这不足以证明是本人。",
    "MATCHED_BY_NAME_ONLY": "平台记录仅凭姓名匹配到当事人。",
    "MATCHED_BY_OTHER": "平台记录凭薄弱证据匹配到当事人（姓名、身份证号、手机号均不一致）。",
    "MATCHED_BY_NEW_IDENTITY": "该平台记录未与其他记录匹配，自成一人。",
    "RECORD_NOT_RESOLVED": "被列入名单的平台记录从未被匹配到任何人。",
    "NO_TIME_RESPECTING_PATH": "没有任何记录能把当事人与一笔及时传到该平台的违约联系起来。",
    "PATH_IGNORES_DATES": "只有忽略日期才存在关联（列入名单早于违约或共享）。",
    "NO_PLATFORM_ROUTE": "当事人与违约有关联，但这些违约所在平台都无法传到该平台。",
    "NO_TIE_TO_ANY_DEFAULT": "没有任何记录把当事人与逾期或违约的贷款联系起来。",
}

#: step kind name -> Chinese sentence, with the placeholders of the English
#: (:attr:`spillover.rules.StepKind.text`)
STEP_TEXTS_ZH: Mapping[str, str] = {
    "own_loan": "{src} 借了 {dst}，申请于 {at}",
    "chained_loan": "{src} 借了 {dst}，申请于 {at}",
    "owns_verified": "{src} 拥有手机号 {dst}（自 {at} 起，已实名认证）",
    "owns_unverified": "{src} 拥有手机号 {dst}（自 {at} 起，未实名认证）",
    "own_phone": "{src} {own_role} {dst}，申请于 {at}",
    "reassigned_phone": "{src} {own_role} {dst}，申请于 {at}",
    "applicant_sms_verified": "{src} 被填作 {dst} 的申请人手机号，申请于 {at}（经短信验证）",
    "applicant_unverified": "{src} 被填作 {dst} 的申请人手机号，申请于 {at}（未经短信验证）",
    "guarantor": "{src} {role} {dst}，申请于 {at}",
    "emergency_contact": "{src} {role} {dst}，申请于 {at}",
    "reference": "{src} {role} {dst}，申请于 {at}",
    "address_book": "{src} {role} {dst}，申请于 {at}",
    "borrower_of_linked_loan": "{src} 的借款人是 {dst}，继续追溯其其他贷款",
    "origin": "{src}{amount} 自 {at} 起在 {dst} {status}",
    "sharing": "{src} 把黑名单传给了 {dst}（{at}）",
    "listing": "{src} 于 {at} 将当事人列为 {dst}",
    "copy": "{src} 于 {at} 被复制为 {dst}",
    "match_known": "{src} 与 {dst} 匹配：数据本身注明了记录对应的人",
    "match_id_number": "{src} 按身份证号与 {dst} 匹配",
    "match_name_and_phone": "{src} 按姓名和手机号与 {dst} 匹配",
    "match_name_and_birth_date": "{src} 按姓名和出生日期与 {dst} 匹配",
    "match_name_and_city": "{src} 按姓名和城市与 {dst} 匹配",
    "match_phone_only": "{src} 仅凭手机号与 {dst} 匹配",
    "match_name_only": "{src} 仅凭姓名与 {dst} 匹配",
    "match_other": "{src} 凭薄弱证据与 {dst} 匹配（姓名、身份证号、手机号均不一致）",
    "match_new_identity": "{src} 未与其他记录匹配，自成一人 {dst}",
}

#: role name -> (Chinese text, Chinese text for the borrower's own number)
ROLE_TEXTS_ZH: Mapping[str, tuple[str, str]] = {
    "applicant": ("被填作申请人手机号，用于", "是借款人本人的号码，用于"),
    "guarantor": ("是担保人，在", "是担保人，在"),
    "emergency_contact": ("是紧急联系人，在", "是紧急联系人，在"),
    "reference": ("是推荐人/证明人，在", "是推荐人/证明人，在"),
    "address_book": ("出现在上传的通讯录中，属于", "出现在上传的通讯录中，属于"),
}

#: verdict value -> (English, Chinese) label
VERDICTS: Mapping[str, Mapping[str, str]] = {
    "own_conduct": {"en": "own conduct", "zh": "本人行为"},
    "spillover": {"en": "spillover (other people's debts)", "zh": "外溢（他人债务）"},
    "unexplained": {"en": "unexplained", "zh": "无法解释"},
}

#: loan status value -> label
LOAN_STATUS: Mapping[str, Mapping[str, str]] = {
    "current": {"en": "current", "zh": "正常"},
    "repaid": {"en": "repaid", "zh": "已还清"},
    "overdue": {"en": "overdue", "zh": "逾期"},
    "defaulted": {"en": "defaulted", "zh": "违约"},
}

#: remedy record kind -> sentence per language ({phone}, {role}, {loan}, {owner},
#: {since}, {entry}, {copied_from}, {from_platform}, {to_platform}, {record}, {person},
#: {how}: the evidence of a match, :data:`MATCH_HOW`)
RECORD_TEXTS: Mapping[str, Mapping[str, str]] = {
    "match": {
        "en": "{record} is matched to {person} by {how}",
        "zh": "{record} 被匹配为 {person}（依据：{how}）",
    },
    "applicant_phone": {
        "en": "{phone} {role} {loan}",
        "zh": "{phone} {role} {loan}",
    },
    "loan_link": {
        "en": "{phone} {role} {loan}",
        "zh": "{phone} {role} {loan}",
    },
    "owner_period": {
        "en": "{owner} owns phone {phone} (since {since})",
        "zh": "{owner} 拥有手机号 {phone}（自 {since} 起）",
    },
    "copy": {
        "en": "entry {entry} was copied from entry {copied_from}",
        "zh": "条目 {entry} 复制自条目 {copied_from}",
    },
    "sharing": {
        "en": "{from_platform} passes its blacklist to {to_platform}",
        "zh": "{from_platform} 把黑名单共享给 {to_platform}",
    },
}

#: match evidence (``matched_by``) -> what a match rests on, in Chinese (the English is
#: :data:`spillover.rules.MATCH_TEXTS`)
MATCH_HOW_ZH: Mapping[str, str] = {
    "known": "数据本身注明了记录对应的人",
    "id_number": "身份证号",
    "name_and_phone": "姓名和手机号",
    "name_and_birth_date": "姓名和出生日期",
    "name_and_city": "姓名和城市",
    "phone_only": "仅凭手机号",
    "name_only": "仅凭姓名",
    "other": "薄弱证据（姓名、身份证号、手机号均不一致）",
    "new_identity": "未与其他记录匹配，自成一人",
}

#: the report's own words
UI: Mapping[str, Mapping[str, str]] = {
    "title": {"en": "Blacklist dispute report", "zh": "黑名单申诉报告"},
    "about": {"en": "Report on", "zh": "报告对象"},
    "data_date": {"en": "Data as of", "zh": "数据截至"},
    "data_date_note": {
        "en": "the latest day recorded in the records this report shows",
        "zh": "本报告所列记录中最晚的日期",
    },
    "summary": {"en": "Summary", "zh": "摘要"},
    "listings": {"en": "Blacklist listings", "zh": "黑名单条目"},
    "on_platforms": {"en": "on platforms", "zh": "涉及平台"},
    "others_debts": {
        "en": "rest on other people's debts",
        "zh": "源于他人的债务",
    },
    "own_conduct_count": {"en": "rest on the subject's own conduct", "zh": "源于本人行为"},
    "unexplained_count": {"en": "have no explanation in the data", "zh": "在数据中无法解释"},
    "behind_most": {"en": "The records behind most of them", "zh": "导致大部分条目的记录"},
    # {m}: a count of listings (t.count: "11 listings" in English, "11" in Chinese)
    "behind_n": {"en": "on paths behind {n} of {m}", "zh": "位于 {m} 个条目中 {n} 个的路径上"},
    # {n}: a count of records
    "n_records": {"en": "{n}", "zh": "{n} 条记录"},
    "what_to_do": {"en": "What you can ask for, and of whom", "zh": "可以要求什么，向谁要求"},
    "what_to_do_lead": {
        "en": "Having these records corrected leaves none of the listings on other people's debts with any explanation:",
        "zh": "更正以下记录后，所有源于他人债务的条目都将失去依据：",
    },
    "clears_after": {
        "en": "with those above, clears {n} of {m}",
        "zh": "连同以上各条，可清除 {m} 个条目中的 {n} 个",
    },
    "held_by": {"en": "held by", "zh": "记录方"},
    "carrier": {"en": "the phone carrier", "zh": "电信运营商"},
    "contact_order": {
        "en": "Platforms to contact, in the order the listing travelled",
        "zh": "按名单传播顺序需要联系的平台",
    },
    "first_lister": {
        "en": "first lister (the listing started here)",
        "zh": "最初列入方（名单从这里开始）",
    },
    "holder": {
        "en": "holds a record on a tie to the listing",
        "zh": "持有与该条目关联的记录",
    },
    "received_from": {"en": "received it from {p}", "zh": "从 {p} 收到"},
    "copied_from": {"en": "copied it from {p}", "zh": "从 {p} 复制"},
    "on_day": {"en": ", known there on {d}", "zh": "，于 {d} 得知"},
    "ask_correct": {"en": "ask to correct", "zh": "要求更正"},
    "ask_nothing": {
        "en": "nothing to correct here: its default reaches the subject only through the records above",
        "zh": "此处无需更正：其违约只经由上述记录牵连到当事人",
    },
    "ask_withdraw": {
        "en": "ask to withdraw or update the listing",
        "zh": "要求撤回或更新该名单",
    },
    "no_remedy_own": {
        "en": "No remedy: this listing rests on the subject's own conduct.",
        "zh": "无需更正：该条目源于本人行为。",
    },
    "no_remedy_unexplained": {
        "en": "No remedy needed from the records: nothing in the data explains this listing; ask the platform to justify or withdraw it.",
        "zh": "数据中没有任何记录能解释该条目：请要求平台说明理由或撤回。",
    },
    "not_clearable": {
        "en": "No set of correctable records clears this listing.",
        "zh": "没有可更正的记录能清除该条目。",
    },
    "drawing": {"en": "How the listings reached the subject", "zh": "名单如何牵连到当事人"},
    "drawing_note": {
        "en": "From the subject (left) through phones and loans to the defaults, then to the platforms that listed.",
        "zh": "从当事人（左）经手机号和贷款到违约，再到列入名单的平台。",
    },
    "entries": {"en": "Every listing", "zh": "每个条目"},
    "entry": {"en": "Entry", "zh": "条目"},
    "listed_by": {"en": "Listed by", "zh": "列入平台"},
    "listed_on": {"en": "Listed on", "zh": "列入日期"},
    "listed_subject": {"en": "Listed subject", "zh": "被列对象"},
    "stated_reason": {"en": "Reason the platform gave", "zh": "平台给出的理由"},
    "copied_from_entry": {"en": "Copied from entry", "zh": "复制自条目"},
    "verdict": {"en": "Verdict", "zh": "结论"},
    "contamination": {"en": "Contamination", "zh": "污染度"},
    "contamination_means": {
        "en": "{pct}% of this listing rests on other people's debts",
        "zh": "该条目有 {pct}% 源于他人的债务",
    },
    "chain": {"en": "The chain (best explanation)", "zh": "关联链（最佳解释）"},
    # {p}: a count of paths, {o}: of origin loans, {s}: how many are shown
    "chain_note": {
        "en": "The best of {p} to {o} ({s} shown: the best path to each origin loan, this one first).",
        "zh": "共有 {p} 条路径通向 {o} 笔源头贷款，这是最佳的一条（显示 {s} 条：每笔源头贷款的最佳路径，本条居首）。",
    },
    "step": {"en": "Step", "zh": "步骤"},
    "date": {"en": "Date", "zh": "日期"},
    "factor": {"en": "Factor", "zh": "系数"},
    "factors": {"en": "How the score is made", "zh": "评分如何得出"},
    "responsibility": {"en": "responsibility", "zh": "责任度"},
    "loans_on_chain": {"en": "Loans on the chain", "zh": "关联链上的贷款"},
    "loan_id": {"en": "Loan", "zh": "贷款编号"},
    "borrower": {"en": "Borrower", "zh": "借款人"},
    "lender": {"en": "Lender", "zh": "放贷平台"},
    "applied": {"en": "Applied", "zh": "申请日期"},
    "status": {"en": "Status", "zh": "状态"},
    "amount": {"en": "Amount", "zh": "金额"},
    "sms_verified": {"en": "Applicant phone SMS-verified", "zh": "申请手机号经短信验证"},
    "yes": {"en": "yes", "zh": "是"},
    "no": {"en": "no", "zh": "否"},
    "unknown": {"en": "unknown", "zh": "未知"},
    "reasons": {"en": "Reasons", "zh": "原因"},
    "other_paths": {"en": "Other explanations", "zh": "其他解释"},
    "origin": {"en": "Origin loan", "zh": "源头贷款"},
    "hops": {"en": "Loans deep", "zh": "关联层数"},
    "remedy": {"en": "Remedy for this listing", "zh": "该条目的更正方案"},
    "remedy_lead": {
        "en": "Correct the {n} below and no explanation is left: they break all {p} through other people's records, not only the best one shown above, which is why a remedy can hold more records than the chain:",
        "zh": "更正以下 {n} 条记录后，该条目不再有任何解释：它们切断了经由他人记录的全部 {p} 条路径，而不只是上面所示的最佳一条（因此更正方案的记录可能比关联链多）：",
    },
    "policy": {"en": "Scoring policy", "zh": "评分策略"},
    "policy_version": {"en": "version", "zh": "版本"},
    "policy_digest": {"en": "digest", "zh": "摘要"},
    "none": {"en": "none", "zh": "无"},
    "no_listings": {
        "en": "No blacklist entry names this subject.",
        "zh": "没有黑名单条目涉及该对象。",
    },
    "more_paths": {"en": "and {n} more", "zh": "另有 {n} 条"},
    "footer": {
        "en": "Made by spillover {version}. Every value comes from the data; the method is described in docs/disputes.md.",
        "zh": "由 spillover {version} 生成。所有数值均来自数据；方法见 docs/disputes.md。",
    },
    "person": {"en": "person", "zh": "个人"},
    "phone": {"en": "phone", "zh": "手机号"},
    "record": {"en": "platform record", "zh": "平台客户记录"},
    "loan_of": {"en": "{borrower}'s loan at {platform}", "zh": "{borrower} 在 {platform} 的贷款"},
    "entry_word": {"en": "entry", "zh": "条目"},
    # the legend of the drawing (report.drawing_svg)
    "legend_record": {"en": "platform record", "zh": "平台客户记录"},
    "legend_person": {"en": "person", "zh": "个人"},
    "legend_phone": {"en": "phone number", "zh": "手机号"},
    "legend_loan": {"en": "loan", "zh": "贷款"},
    "legend_online_lender": {"en": "lender", "zh": "放贷平台"},
    "legend_other": {"en": "other platform", "zh": "其他平台"},
    "legend_data_broker": {"en": "data broker", "zh": "数据中介"},
    "legend_bank": {"en": "bank", "zh": "银行"},
    "legend_entry": {"en": "blacklist entry", "zh": "黑名单条目"},
    "colon": {"en": ": ", "zh": "："},
    "stop": {"en": ". ", "zh": "。"},
}
