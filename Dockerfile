FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kernel kernel
COPY imi imi
COPY ledger ledger
COPY issuer issuer
COPY verifier verifier
COPY wallet_api wallet_api
COPY schemas schemas
COPY migrations migrations
RUN pip install --no-cache-dir .
ENV IMI_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["imi", "serve", "--host", "0.0.0.0", "--port", "8000"]
