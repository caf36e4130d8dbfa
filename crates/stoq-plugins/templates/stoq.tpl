{#- stoQ plain-text report: the jinja plugin's built-in template.
    Context: results, request_meta, errors, time, decorators, scan_id,
    response (the whole StoqResponse) and plugin_name. trim_blocks and
    lstrip_blocks are on, so block tags on their own line leave no trace. #}
stoQ scan report
================
Scan ID:   {{ scan_id }}
Time:      {{ time }}
Source:    {{ request_meta.source if request_meta.source is not none else "-" }}
Archiving: {{ "yes" if request_meta.archive_payloads else "no" }}
{% for key, value in request_meta.extra_data|items %}
Request {{ key }}: {{ value if value is string else value|pretty_json|indent(4) }}
{% endfor %}
Payloads:  {{ results|length }} ({{ results|map(attribute="size")|sum }} bytes)
Errors:    {{ errors|length }}
{% for payload in results %}

------------------------------------------------------------------------
Payload {{ loop.index }}/{{ loop.length }}: {{ payload.payload_id }}
  Size:           {{ payload.size }} bytes
  Filename:       {{ payload.payload_meta.extra_data.filename|default("-") }}
  Extracted from: {{ payload.extracted_from|join(", ") or "-" }}
  Extracted by:   {{ payload.extracted_by|join(", ") or "-" }}
  Workers run:    {{ payload.plugins_run.workers|join(", ") or "-" }}
  Archivers run:  {{ payload.plugins_run.archivers|join(", ") or "-" }}
{% for key, value in payload.payload_meta.extra_data|items if key != "filename" %}
  Meta {{ key }}: {{ value if value is string else value|pretty_json|indent(4) }}
{% endfor %}
{% for name, result in payload.workers|items %}
  [{{ name }}]
{% if result is mapping %}
{% for key, value in result|items %}
    {{ key }}: {{ value if value is string else value|pretty_json|indent(4) }}
{% else %}
    (no results)
{% endfor %}
{% else %}
    {{ result if result is string else result|pretty_json|indent(4) }}
{% endif %}
{% endfor %}
{% for name, result in payload.archivers|items %}
  [archiver {{ name }}]
    {{ result|pretty_json|indent(4) }}
{% endfor %}
{% endfor %}
{% for name, value in decorators|items if name != plugin_name %}
{% if loop.first %}

------------------------------------------------------------------------
Decorators
{% endif %}
  [{{ name }}]
    {{ value if value is string else value|pretty_json|indent(4) }}
{% endfor %}

------------------------------------------------------------------------
Errors ({{ errors|length }})
{% for e in errors %}
  - [{{ e.plugin_name or "core" }}{% if e.payload_id %}, payload {{ e.payload_id }}{% endif %}] {{ e.error }}{{ "\n" if not loop.last }}
{%- else %}
  (none)
{%- endfor %}
