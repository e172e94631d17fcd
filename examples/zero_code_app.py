"""An ordinary LLM app: no tokenrate, no OpenTelemetry in the code. ``zero_code.sh`` runs it instrumented.

The SDKs read their usual variables (OPENAI_BASE_URL / OPENAI_API_KEY, ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY).
"""

import anthropic
import openai

messages = [{"role": "user", "content": "Name three rate-limiting algorithms."}]

oa = openai.OpenAI()
reply = oa.chat.completions.create(model="gpt-4o-mini", messages=messages)
print("openai:", reply.choices[0].message.content[:60], "...")

an = anthropic.Anthropic()
with an.messages.stream(model="claude-haiku-4-5", max_tokens=300, messages=messages) as stream:
    text = "".join(stream.text_stream)
print("anthropic:", text[:60], "...")
