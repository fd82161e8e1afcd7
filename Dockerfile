# jobqueue image: the same command runs `serve`, `api`, `worker` or `migrate`.
FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . && useradd --system --home /app jobqueue && chown jobqueue /app
USER jobqueue
ENV HOST=0.0.0.0 PORT=3000 LOG_FORMAT=json
EXPOSE 3000
ENTRYPOINT ["jobqueue"]
CMD ["serve"]
