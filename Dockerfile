# One image for the API and the worker (docker-compose.yml picks the command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api api
COPY activities activities
COPY db db
COPY domain domain
COPY services services
COPY templates templates
COPY tollgate_cli tollgate_cli
COPY workflows workflows
COPY cli.py config.py worker.py ./
RUN pip install --no-cache-dir .
ENV TOLLGATE_API_HOST=0.0.0.0
EXPOSE 8000
CMD ["tollgate", "api"]
