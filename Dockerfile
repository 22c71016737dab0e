FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY deploycheck deploycheck
COPY checklists checklists
RUN pip install --no-cache-dir .
COPY . .
ENV PYTHONUNBUFFERED=1 DEPLOYCHECK_VAR_DIR=/app/var
EXPOSE 8000
