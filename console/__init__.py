"""The built-in web console (工单队列, 工单详情, 期限看板, 统计): server-rendered, no JavaScript
libraries. The composition root installs it under /console (pingjia/app.py)."""
