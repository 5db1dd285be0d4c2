"""Every name a person reads, in Chinese: one catalogue for the console, the API and the CLI.

Code keeps its stable identifiers (`dispatched`, `extension_requested`, `verify`); people read
these words instead. A domain refusal (rating/errors.py) carries a `code` and its `params`; its
message is `refusal(code, params)`, rendered here from the code's template. Parameters named in
`PARAM_WORDS` (a status, a role, a deadline, …) are shown by their Chinese names; others as given.

tests/test_words.py scans the source for every code a DomainError is raised with and fails on
one missing here, or on a template whose parameters a raise site does not give.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping

# --- names ------------------------------------------------------------------------------------

TICKET_STATUSES = {
    "new": "待转办",
    "dispatched": "已转办",
    "confirmed": "核实属实",
    "not_adopted": "不予采纳",
    "rectifying": "整改中",
    "rectified": "已整改",
    "closed": "已办结",
}
# Ticket history entries: the workflow's steps and the extension events.
TICKET_EVENTS = {
    "dispatch": "转办",
    "confirm": "核实属实",
    "not_adopt": "核实不予采纳",
    "start_rectify": "开始整改",
    "rectify": "整改完成",
    "close": "办结",
    "extension_requested": "申请延期",
    "extension_granted": "批准延期",
    "extension_refused": "驳回延期",
}
EXTENSION_STATUSES = {"requested": "待审批", "granted": "已批准", "refused": "已驳回"}
# The profiles' ticket deadlines (rating/policy/profiles/*.toml, [[ticket_deadlines]] name).
DEADLINES = {"verify": "核实", "rectify": "整改", "callback": "回访核实"}
EVALUATION_STATUSES = {"pending": "待评价", "rated": "已评价", "defaulted": "默认评价"}
CHANNELS = {
    "ivr": "电话按键",
    "survey": "外呼回访",
    "sms": "短信",
    "web": "评价链接",
    "system": "系统默认",
    "api": "人工录入",
}
ROLES = {"agent": "话务员", "agency": "承办单位", "bureau": "主管部门", "admin": "管理员"}
# Actors that are not a signed-in token (`role:name`): the machine's own steps.
SYSTEM_ACTORS = {"scheduler": "系统定时任务", "system": "系统", "bridge": "12345 对接"}
CASE_KINDS = {"consultation": "咨询", "complaint": "投诉"}
TAG_KINDS = {"staff": "工作人员", "matter": "办理事项"}
STATS_GROUPS = {"day": "按日", "agency": "按单位", "channel": "按渠道", "agent": "按话务员"}
ALERT_PHASES = {"before": "到期前", "at": "到期", "after": "逾期"}
# An alert SMS's delivery, as the board shows it.
SMS_STATUSES = {
    "pending": "待发送",
    "sent": "已发送",
    "delivered": "已送达",
    "failed": "发送失败",
    "skipped": "未发送",
    "none": "不发短信",
}
# What the bridge sends, as the dead-letter desk names it (rating/outbox/central.py and
# rating/dead_letters/repository.py's TRANSFER_TOPIC).
OUTBOX_TOPICS = {
    "central.rating": "评价结果",
    "central.rating.update": "评价更新（追评）",
    "central.ticket": "工单结果",
    "12345.transfer": "转办12345",
}
# Why the dead-letter desk did not re-arm a named item (rating/dead_letters/desk.py's reasons).
DEAD_LETTER_REFUSALS = {
    "not found": "未找到",
    "not dead-lettered: already sent": "已发送，不在死信队列中",
    "not dead-lettered: already transferred": "已转办，不在死信队列中",
    "not dead-lettered: still being tried": "仍在重试中，不在死信队列中",
}
UNFILLED = "未填写"  # a blank the page and the CSV both show so

# --- refusals ---------------------------------------------------------------------------------

REFUSALS: dict[str, str] = {
    # the classes' defaults, for a refusal raised without its own code
    "domain_error": "操作未能完成。",
    "not_found": "找不到要查找的记录。",
    "conflict": "记录已被他人修改，请刷新后重试。",
    "invalid_input": "输入有误，请检查后重新提交。",
    "forbidden": "您的账号无权执行此操作。",
    # cases and ratings
    "invalid_kind": "诉求类型应为以下之一：{allowed}。",
    "naive_timestamp": "办结时间须带时区偏移，例如 2026-11-21T17:30:00+08:00。",
    "completed_in_future": (
        "办结时间 {completed_at} 晚于服务器时间 {now}（允许误差 {minutes} 分钟）："
        "不能邀请市民评价尚未办结的诉求。"
    ),
    "case_not_found": "诉求 {case_no} 未登记。",
    "invalid_phone": (
        "电话号码应为 11 位手机号（以 1 开头）、带区号的固定电话，或以 + 开头的国际号码。"
    ),
    "invalid_level": "评价等级应为 1（非常满意）到 5（非常不满意），收到的是 {value}。",
    "invalid_channel": "评价渠道应为以下之一：{allowed}，收到的是 {value}。",
    "invalid_tag": "原因代码 {tag} 不是「{level}」可选的原因；可选：{allowed}。",
    "reason_too_long": "意见有 {length} 个字，最多 {max} 个字。",
    "reason_required": "「{level}」须选择原因或填写意见。",
    "already_rated": "已经评价过，不能重复评价。",
    "rating_changed": "评价在保存时被同时修改，请重试。",
    "no_second_rating": "诉求 {case_no} 没有待处理的追评邀请。",
    "unstorable_text": "输入含有无法保存的字符，请删除后重新提交（{field}：{problem}）。",
    "idempotency_key_reused": (
        "幂等键 Idempotency-Key {key} 已用于另一个请求（{route}，内容不同）："
        "一个键只代表一个请求，请换用新的键。"
    ),
    "invalid_idempotency_key": "幂等键 Idempotency-Key 应为 1 到 {max} 个字符。",
    # tickets
    "ticket_not_found": "没有工单 {ticket_no}。",
    "ticket_changed": "工单 {ticket_no} 已被他人修改，请刷新后重试。",
    "unknown_action": "没有名为 {action} 的办理步骤。",
    "role_not_allowed": "{role}不能办理「{action}」；可以办理的是：{roles}。",
    "illegal_transition": (
        "工单当前状态为「{status}」，不能办理「{action}」；现在可以办理：{actions}。"
    ),
    "appeals_off": "本市规定不受理不予采纳的申请。",
    "not_appealable": (
        "本市规定只有涉及{allowed_kinds}的差评可以核实不予采纳；此评价的原因涉及：{found_kinds}。"
    ),
    "agency_required": "转办须填写承办单位。",
    "evidence_required": "核实不予采纳须提供证据。",
    "feedback_required": "整改完成须填写书面整改反馈。",
    "extension_request_forbidden": "{role}不能申请延期：延期由承办单位申请。",
    "extension_decide_forbidden": "{role}不能审批延期：延期由主管部门审批。",
    "extension_reason_required": "申请延期须填写理由。",
    "no_deadline": "工单当前状态为「{status}」，没有可以延期的期限。",
    "ticket_done": "工单当前状态为「{status}」，不能再申请延期。",
    "extension_pending": "该工单已有一项延期申请等待主管部门审批。",
    "extension_not_later": "新的期限须晚于现行期限（{due}）。",
    "invalid_due_at": "请填写新的期限（日期和时间）。",
    "extension_not_found": "工单 {ticket_no} 没有编号为 {extension_id} 的延期申请。",
    "already_decided": "该延期申请{extension_status}，不能再次审批。",
    "agency_token_without_agency": "此承办单位令牌没有指定单位，请指定单位重新创建令牌。",
    "voice_not_found": "{detail}",
    # calls
    "ami_not_configured": "未配置 Asterisk 呼叫服务，暂不能外呼或回拨，请联系管理员。",
    "ami_unavailable": "无法连接 Asterisk（AMI），未发起呼叫，请稍后再试。",
    "call_in_progress": "该诉求的上一通电话尚未结束或结果未明，为免重复打扰市民，请稍后再试。",
    "outbound_survey_off": "本市未开启外呼回访评价。",
    "invalid_extension": "坐席分机号应为 2 到 8 位数字。",
    "no_phone": "诉求 {case_no} 没有可拨打的电话号码。",
    # tokens
    "invalid_role": "角色应为以下之一：{allowed}。",
    "invalid_name": "令牌须有名称。",
    "agency_not_allowed": "只有承办单位令牌可以指定单位，{role}令牌不能。",
    "unknown_agency": (
        "没有诉求使用单位名称「{agency}」：请对照案件系统核对名称，或加 --force 仍然创建令牌。"
    ),
    "token_not_found": "找不到令牌 {ref}。",
    "ambiguous_token": "有 {count} 个未吊销的令牌名为「{ref}」（编号 {ids}），请按编号吊销。",
    # statistics, reports and published results
    "invalid_group": "分组方式应为以下之一：{groups}。",
    "invalid_period": "结束时间须晚于开始时间。",
    "period_too_long": "一次最多统计 {days} 天。",
    "invalid_date": "日期格式应为 年-月-日，例如 2026-11-21。",
    "invalid_month": "月份格式应为 YYYY-MM，例如 2026-11：{value}",
    "future_month": "不能公布未来月份的结果：{month}",
    "agency_without_ratings": "{month} 没有这些单位的评价，不能公布：{agencies}",
    "month_not_published": "{month}的评价结果尚未公布。",
    # the dead-letter desk
    "nothing_named": "请选择要重新发送的项目。",
    "invalid_id": "编号应为数字：{value}",
    # settings
    # For operators: the setting's own words (the environment variable it names) follow.
    "bad_settings": "设置有误：{detail}",
}


def _words(table: Mapping[str, str]) -> Callable[[object], str]:
    return lambda value: table.get(str(value), str(value))


def _listed(one: Callable[[object], str]) -> Callable[[object], str]:
    def show(value: object) -> str:
        if isinstance(value, str) or not isinstance(value, Iterable):
            return one(value)
        shown = [one(v) for v in value]
        return "、".join(shown) if shown else "无"

    return show


# How a parameter, by its name, is shown inside a refusal.
PARAM_WORDS: dict[str, Callable[[object], str]] = {
    "status": _words(TICKET_STATUSES),
    "extension_status": _words(EXTENSION_STATUSES),
    "action": _words(TICKET_EVENTS),
    "actions": _listed(_words(TICKET_EVENTS)),
    "role": _words(ROLES),
    "roles": _listed(_words(ROLES)),
    "deadline": _words(DEADLINES),
    "groups": _listed(_words(STATS_GROUPS)),
    "allowed_kinds": _listed(_words(TAG_KINDS)),
    "found_kinds": _listed(_words(TAG_KINDS)),
    "agencies": _listed(str),
}


def template_fields(template: str) -> set[str]:
    """The parameters a template names."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def refusal(code: str, params: Mapping[str, object] | None = None, fallback: str = "") -> str:
    """The Chinese message of a refusal. An unknown code, or a template whose parameters are not
    all given, falls back to `fallback` (or the generic message): never a KeyError to a user."""
    params = params or {}
    template = REFUSALS.get(code)
    if template is None or not template_fields(template) <= params.keys():
        return fallback or REFUSALS["domain_error"]
    shown = {name: PARAM_WORDS.get(name, _listed(str))(value) for name, value in params.items()}
    return template.format_map(shown)


def role_name(role: str) -> str:
    return ROLES.get(role, role)


def actor_name(actor: str) -> str:
    """`role:name` (a signed-in token, as the history records it) as 话务员 name."""
    if actor in SYSTEM_ACTORS:
        return SYSTEM_ACTORS[actor]
    role, sep, name = actor.partition(":")
    if sep and role in ROLES:
        return f"{ROLES[role]} {name}"
    return actor


# --- input that does not fit an interface ------------------------------------------------------

# Pydantic's error `type` (kept in the API's details for programs) to the Chinese people read,
# with pydantic's `ctx` as parameters. Our own validators raise PydanticCustomError with a type
# of their own (`time_not_text`, `retry_*`), listed here too.
TIME_EXAMPLE = "2026-11-21T17:30:00+08:00"
_TIME = f"应为 ISO 8601 日期时间，带时区偏移，例如 {TIME_EXAMPLE}。"
INPUT_PROBLEMS: dict[str, str] = {
    "missing": "必须填写。",
    "extra_forbidden": "不是此接口的字段，请删除。",
    "string_type": "应为文本（JSON 字符串）。",
    "string_too_short": "至少 {min_length} 个字符（前后空白不计）。",
    "string_too_long": "最多 {max_length} 个字符。",
    "string_pattern_mismatch": "格式不符合要求，应匹配正则表达式 {pattern}。",
    "int_type": "应为整数（JSON 数字，不带引号、不带小数）。",
    "int_parsing": "应为整数。",
    "int_parsing_size": "数值太大。",
    "int_from_float": "应为整数，不能带小数。",
    "float_type": "应为数字。",
    "float_parsing": "应为数字。",
    "bool_type": "应为 true 或 false（JSON 布尔值，不带引号）。",
    "bool_parsing": "应为 true 或 false。",
    "list_type": "应为列表（JSON 数组）。",
    "dict_type": "应为 JSON 对象。",
    "model_type": "应为 JSON 对象。",
    "too_short": "至少 {min_length} 项。",
    "too_long": "最多 {max_length} 项，收到 {actual_length} 项。",
    "greater_than": "应大于 {gt}。",
    "greater_than_equal": "应不小于 {ge}。",
    "less_than": "应小于 {lt}。",
    "less_than_equal": "应不大于 {le}。",
    "literal_error": "应为以下之一：{expected}。",
    "enum": "应为以下之一：{expected}。",
    "datetime_type": _TIME,
    "datetime_parsing": _TIME,
    "datetime_from_date_parsing": _TIME,
    "timezone_aware": f"须带时区偏移，例如 {TIME_EXAMPLE}。",
    "json_invalid": "不是有效的 JSON。",
    "json_type": "不是有效的 JSON。",
    "value_error": "取值无效。",
    # our own validators'
    "time_not_text": f"时间须为文字形式的 ISO 8601 日期时间，不能是数字，例如 {TIME_EXAMPLE}。",
    "retry_nothing_named": "请列出 outbox_ids 或 ticket_nos，或只给 all: true。",
    "retry_all_alone": "all: true 须单独给出，不能同时列出 outbox_ids 或 ticket_nos。",
}
INPUT_PROBLEM_FALLBACK = "不符合接口说明。"


def _expected(value: object) -> str:
    """Pydantic's `'a', 'b' or 'c'` as `a、b、c`."""
    text = str(value)
    quoted = text.split("'")[1::2] if "'" in text else [text]
    return "、".join(quoted)


def input_problem(kind: str, ctx: Mapping[str, object] | None = None) -> str:
    """What is wrong with one input value, in Chinese, from pydantic's error type and ctx."""
    template = INPUT_PROBLEMS.get(kind, INPUT_PROBLEM_FALLBACK)
    shown = {k: _expected(v) if k == "expected" else str(v) for k, v in (ctx or {}).items()}
    if not template_fields(template) <= shown.keys():
        return INPUT_PROBLEM_FALLBACK
    return template.format_map(shown)
