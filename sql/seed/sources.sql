-- The sources femo knows how to read; jobs register further ones as they meet them.
-- init_catalog merges these rows on source_id: a re-run commits nothing; registered_at is set
-- on first insert only.
SELECT * FROM VALUES
  ('fer2013', 'FER-2013', 'image_folders',
   'https://www.kaggle.com/datasets/msambare/fer2013',
   'research use; no licence stated by the authors',
   '48x48 grayscale face crops; train/ and test/ (PublicTest_ and PrivateTest_) folders'),
  ('fer2013_csv', 'FER-2013 (original CSV)', 'fer_csv',
   'https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge',
   'research use; no licence stated by the authors',
   'fer2013.csv: emotion, pixels (2304 gray values), Usage'),
  ('kaggle_random', 'Random images for face emotion recognition', 'image_folders',
   'https://www.kaggle.com/datasets/sudarshanvaidya/random-images-for-face-emotion-recognition',
   'see the dataset page', '8 emotion folders including contempt, 224 px photos'),
  ('pixabay', 'Pixabay image API', 'image_api', 'https://pixabay.com/api/docs/',
   'Pixabay Content License', 'photos found by "<emotion> face" queries'),
  ('ddg', 'DuckDuckGo image search (hosted API)', 'web_search',
   'https://duckduckgo.com', 'per image: see its source page', 'web image search results'),
  ('imotions_facs', 'iMotions FACS guide', 'web_page',
   'https://imotions.com/blog/learning/research-fundamentals/facial-action-coding-system/',
   'quoted for research', 'action units and the emotions they express'),
  ('everyday_emotions', 'Emotions in everyday life', 'csv',
   'https://doi.org/10.1371/journal.pone.0145450', 'CC BY 4.0',
   'experience-sampling study: 0/1 emotion flags by hour and weekday')
  AS seed(source_id, name, kind, url, licence, notes)
